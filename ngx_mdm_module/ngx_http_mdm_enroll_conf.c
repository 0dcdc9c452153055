
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_enroll: its directives (mdm_enroll, mdm_enroll_sign,
 * mdm_enroll_ca_cert), and the create and merge of its location conf.
 */


#include "ngx_http_mdm_enroll.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


static void ngx_http_mdm_enroll_signer_cleanup(void *data);


void
ngx_http_mdm_enroll_create_conf(ngx_http_mdm_enroll_conf_t *conf)
{
    /*
     * set by ngx_pcalloc() of the location conf:
     *
     *     conf->server_url = { 0, NULL };  ... and the other strings
     *     conf->device_ca = NULL;
     */

    conf->enabled = NGX_CONF_UNSET;
    conf->machineinfo_ttl = NGX_CONF_UNSET;
    conf->ca_der = NGX_CONF_UNSET_PTR;
    conf->signer = NGX_CONF_UNSET_PTR;
    conf->device_ca_set = NGX_CONF_UNSET;
}


char *
ngx_http_mdm_enroll_merge_conf(ngx_conf_t *cf,
    ngx_http_mdm_enroll_conf_t *prev, ngx_http_mdm_enroll_conf_t *conf)
{
    ngx_http_mdm_main_conf_t  *mmcf;

    /* the handler is per location */
    ngx_conf_init_value(conf->enabled, 0);

    ngx_conf_merge_str_value(conf->server_url, prev->server_url, "");
    ngx_conf_merge_str_value(conf->checkin_url, prev->checkin_url, "");
    ngx_conf_merge_str_value(conf->scep_url, prev->scep_url, "");
    ngx_conf_merge_str_value(conf->organization, prev->organization, "");
    ngx_conf_merge_str_value(conf->name, prev->name, "MDM enrollment");
    ngx_conf_merge_sec_value(conf->machineinfo_ttl, prev->machineinfo_ttl,
                             30 * 86400);
    ngx_conf_merge_ptr_value(conf->ca_der, prev->ca_der, NULL);
    ngx_conf_merge_ptr_value(conf->signer, prev->signer, NULL);

    if (conf->device_ca_set == NGX_CONF_UNSET) {
        conf->device_ca_set = prev->device_ca_set;
        conf->device_ca = prev->device_ca;
    }

    ngx_conf_init_value(conf->device_ca_set, 0);

    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    /*
     * a pool only where there is private-key work to give it: profiles
     * (mdm_enroll) and renewal profiles (the API) alike
     */
    if (conf->signer
        && ngx_strcmp(conf->thread_pool_name.data, "off") != 0)
    {
#if (NGX_THREADS)
        conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
#else
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "built without threads: mdm_enroll_sign signs "
                           "in the worker's event loop");
#endif
    }

    if (conf->machineinfo_ttl <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_enroll_machineinfo_ttl must be positive");
        return NGX_CONF_ERROR;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);

    if (conf->enabled && !mmcf->configured) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_enroll needs \"mdm_redis\" in http{}");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_mdm_enroll_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->enroll.enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->enroll.enabled = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mdm_enroll_handler;

    return NGX_CONF_OK;
}


/* mdm_enroll_sign CERT KEY: CERT's file may go on with the chain */

char *
ngx_http_mdm_enroll_sign_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    X509                          *x;
    BIO                           *bio;
    ngx_str_t                     *value, cert, key;
    ngx_pool_cleanup_t            *cln;
    ngx_http_mdm_enroll_signer_t  *s;

    if (mlcf->enroll.signer != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cert = value[1];
    key = value[2];

    if (ngx_conf_full_name(cf->cycle, &cert, 1) != NGX_OK
        || ngx_conf_full_name(cf->cycle, &key, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    s = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_enroll_signer_t));
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (s == NULL || cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_mdm_enroll_signer_cleanup;
    cln->data = s;

    s->chain = sk_X509_new_null();
    bio = BIO_new_file((char *) cert.data, "r");

    if (s->chain == NULL || bio == NULL) {
        BIO_free(bio);
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open mdm_enroll_sign \"%V\"", &cert);
        return NGX_CONF_ERROR;
    }

    s->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);

    while (s->cert && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (sk_X509_push(s->chain, x) == 0) {
            X509_free(x);
            BIO_free(bio);
            return NGX_CONF_ERROR;
        }
    }

    BIO_free(bio);

    bio = BIO_new_file((char *) key.data, "r");
    if (bio) {
        s->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }

    ERR_clear_error();

    if (s->cert == NULL || s->key == NULL
        || X509_check_private_key(s->cert, s->key) != 1)
    {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_enroll_sign: \"%V\" must be a PEM "
                           "certificate (then its chain) and \"%V\" its "
                           "PEM private key", &cert, &key);
        return NGX_CONF_ERROR;
    }

    mlcf->enroll.signer = s;

    return NGX_CONF_OK;
}


static void
ngx_http_mdm_enroll_signer_cleanup(void *data)
{
    ngx_http_mdm_enroll_signer_t  *s = data;

    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    sk_X509_pop_free(s->chain, X509_free);
}


/* mdm_enroll_ca_cert FILE: the CA devices must trust, as a root payload */

char *
ngx_http_mdm_enroll_ca_cert_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    int         n;
    X509       *x;
    BIO        *bio;
    u_char     *p;
    ngx_str_t  *value, file, *der;

    if (mlcf->enroll.ca_der != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    x = NULL;
    bio = BIO_new_file((char *) file.data, "r");
    if (bio) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }

    ERR_clear_error();

    if (x == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_enroll_ca_cert \"%V\" is not a readable PEM "
                           "certificate", &file);
        return NGX_CONF_ERROR;
    }

    n = i2d_X509(x, NULL);
    der = ngx_palloc(cf->pool, sizeof(ngx_str_t));
    p = (n > 0 && der) ? ngx_pnalloc(cf->pool, n) : NULL;

    if (p == NULL) {
        X509_free(x);
        return NGX_CONF_ERROR;
    }

    der->data = p;
    der->len = i2d_X509(x, &p);
    X509_free(x);

    mlcf->enroll.ca_der = der;

    return NGX_CONF_OK;
}
