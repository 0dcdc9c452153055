
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The SCEP CA's directives: the CA (and RA) certificate and key, read once
 * at configuration time, the validity of what it issues, the static
 * challenge and the thread pool that does the private-key work.
 */


#include "ngx_http_mdm_scep.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


static void ngx_http_mdm_scep_pair_cleanup(void *data);
static void ngx_http_mdm_scep_oids_cleanup(void *data);
static ngx_int_t ngx_http_mdm_scep_load(ngx_conf_t *cf, ngx_str_t *name,
    ngx_http_mdm_scep_pair_t *pair, ngx_uint_t is_key);
static char *ngx_http_mdm_scep_keys(ngx_conf_t *cf,
    ngx_http_mdm_scep_conf_t *conf);


void *
ngx_http_mdm_scep_create_conf(ngx_conf_t *cf)
{
    ngx_http_mdm_scep_conf_t  *scf;

    scf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_scep_conf_t));
    if (scf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     scf->challenge = { 0, NULL };
     *     scf->pool_name = { 0, NULL };
     *     scf->keys = NULL;
     *     scf->cacert = { 0, NULL };
     *     scf->thread_pool = NULL;
     */

    scf->enabled = NGX_CONF_UNSET;
    scf->ca = NGX_CONF_UNSET_PTR;
    scf->ra = NGX_CONF_UNSET_PTR;
    scf->validity = NGX_CONF_UNSET;
    scf->challenge_ttl = NGX_CONF_UNSET;
    scf->min_rsa_bits = NGX_CONF_UNSET_UINT;
    scf->challenge_required = NGX_CONF_UNSET;
    scf->concurrency = NGX_CONF_UNSET_UINT;
    scf->queue = NGX_CONF_UNSET_UINT;

    return scf;
}


char *
ngx_http_mdm_scep_merge_conf(ngx_conf_t *cf, ngx_http_mdm_scep_conf_t *prev,
    ngx_http_mdm_scep_conf_t *conf)
{
    ngx_http_mdm_main_conf_t  *mmcf;

    /* the handler is per location */
    ngx_conf_init_value(conf->enabled, 0);

    ngx_conf_merge_ptr_value(conf->ca, prev->ca, NULL);
    ngx_conf_merge_ptr_value(conf->ra, prev->ra, NULL);
    ngx_conf_merge_sec_value(conf->validity, prev->validity, 365 * 86400);
    ngx_conf_merge_str_value(conf->challenge, prev->challenge, "");
    ngx_conf_merge_sec_value(conf->challenge_ttl, prev->challenge_ttl, 3600);
    ngx_conf_merge_str_value(conf->pool_name, prev->pool_name, "default");
    ngx_conf_merge_uint_value(conf->min_rsa_bits, prev->min_rsa_bits, 2048);
    ngx_conf_merge_value(conf->challenge_required, prev->challenge_required,
                         1);

    /*
     * One private-key task of SCEP at a time per worker by default: with
     * nginx's default pool (32 threads) a burst took every core from the
     * event loops (signed Idle p99 3.3 ms -> 15 ms on 2 cores).
     */
    ngx_conf_merge_uint_value(conf->concurrency, prev->concurrency, 1);
    ngx_conf_merge_uint_value(conf->queue, prev->queue, 256);

    if (conf->concurrency == 0 || conf->concurrency > 1024
        || conf->queue > 65536)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep_concurrency must be 1 to 1024, "
                           "mdm_scep_queue 0 to 65536");
        return NGX_CONF_ERROR;
    }

    if (conf->min_rsa_bits < 1024 || conf->min_rsa_bits > 16384) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep_min_rsa_bits must be 1024 to 16384");
        return NGX_CONF_ERROR;
    }

    if (conf->challenge.len > NGX_HTTP_MDM_SCEP_CHALLENGE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep_challenge is over 255 bytes: a "
                           "challengePassword cannot be that long");
        return NGX_CONF_ERROR;
    }

    if (conf->validity <= 0 || conf->challenge_ttl <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep_validity and mdm_scep_challenge_ttl "
                           "must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (!conf->enabled) {
        return NGX_CONF_OK;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);

    if (!mmcf->configured) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep needs \"mdm_redis\" in http{} (serials "
                           "and one-time challenges live there)");
        return NGX_CONF_ERROR;
    }

    if (conf->ca == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep needs \"mdm_scep_ca CERT KEY\"");
        return NGX_CONF_ERROR;
    }

    if (!conf->challenge_required) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "mdm_scep_challenge_required off: whoever reaches "
                           "this location gets a certificate of the CA "
                           "without a challenge; restrict it (allow/deny, "
                           "auth_request)");
    }

    if (ngx_strcmp(conf->pool_name.data, "off") != 0) {
#if (NGX_THREADS)
        conf->thread_pool = ngx_thread_pool_add(cf, &conf->pool_name);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
#else
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "this module is built without threads: SCEP "
                           "private-key work runs in the worker");
#endif
    }

    return ngx_http_mdm_scep_keys(cf, conf);
}


/* the keys the jobs use and the GetCACert answer, once per location */

static char *
ngx_http_mdm_scep_keys(ngx_conf_t *cf, ngx_http_mdm_scep_conf_t *conf)
{
    u_char              *der;
    size_t               len;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mdm_scep_pki_init() != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep: cannot make the SCEP OIDs");
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_mdm_scep_oids_cleanup;
    cln->data = NULL;

    conf->keys = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_scep_keys_t));
    if (conf->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->keys->ca_cert = conf->ca->cert;
    conf->keys->ca_key = conf->ca->key;

    if (conf->ra) {
        conf->keys->ra_cert = conf->ra->cert;
        conf->keys->ra_key = conf->ra->key;
    }

    if (ngx_http_mdm_scep_cacert(conf->keys, &der, &len) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep: cannot encode the CA certificate");
        return NGX_CONF_ERROR;
    }

    conf->cacert.data = ngx_pnalloc(cf->pool, len);
    if (conf->cacert.data == NULL) {
        OPENSSL_free(der);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(conf->cacert.data, der, len);
    conf->cacert.len = len;
    OPENSSL_free(der);

    return NGX_CONF_OK;
}


char *
ngx_http_mdm_scep_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_mdm_scep_conf_t  *scf;

    scf = mlcf->scep;

    if (scf->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    if (mlcf->checkin != NGX_CONF_UNSET || mlcf->api) {
        return "conflicts with another mdm handler in this location";
    }

    scf->enabled = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mdm_scep_handler;

    return NGX_CONF_OK;
}


/* mdm_scep_ca CERT KEY; mdm_scep_ra CERT KEY (PEM, RSA) */

char *
ngx_http_mdm_scep_pair_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_str_t                  *value;
    ngx_pool_cleanup_t         *cln;
    ngx_http_mdm_scep_pair_t   *pair, **field;

    field = (ngx_http_mdm_scep_pair_t **) ((char *) mlcf->scep + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    pair = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_scep_pair_t));
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (pair == NULL || cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_mdm_scep_pair_cleanup;
    cln->data = pair;

    if (ngx_http_mdm_scep_load(cf, &value[1], pair, 0) != NGX_OK
        || ngx_http_mdm_scep_load(cf, &value[2], pair, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (EVP_PKEY_get_base_id(pair->key) != EVP_PKEY_RSA) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: the key \"%V\" is not RSA (SCEP clients "
                           "encrypt to the CA with RSA)", &cmd->name,
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    if (X509_check_private_key(pair->cert, pair->key) != 1) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: the key \"%V\" is not the key of \"%V\"",
                           &cmd->name, &value[2], &value[1]);
        return NGX_CONF_ERROR;
    }

    /* refused at issue time, but the admin should know at once */
    if (X509_cmp_time(X509_get0_notAfter(pair->cert), NULL) < 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "%V: the certificate \"%V\" has expired: "
                           "certificate requests will be refused",
                           &cmd->name, &value[1]);
    }

    /* macOS picks the certificate to encrypt to by its key usage */
    if ((X509_get_key_usage(pair->cert) & KU_KEY_ENCIPHERMENT) == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "%V: the certificate \"%V\" lacks the "
                           "keyEncipherment key usage that SCEP clients "
                           "look for (RFC 8894 section 2.1.2)",
                           &cmd->name, &value[1]);
    }

    *field = pair;

    return NGX_CONF_OK;
}


static void
ngx_http_mdm_scep_oids_cleanup(void *data)
{
    ngx_http_mdm_scep_pki_done();
}


static void
ngx_http_mdm_scep_pair_cleanup(void *data)
{
    ngx_http_mdm_scep_pair_t  *pair = data;

    X509_free(pair->cert);
    EVP_PKEY_free(pair->key);
}


static ngx_int_t
ngx_http_mdm_scep_load(ngx_conf_t *cf, ngx_str_t *name,
    ngx_http_mdm_scep_pair_t *pair, ngx_uint_t is_key)
{
    BIO        *bio;
    ngx_str_t   file;

    file = *name;

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    bio = BIO_new_file((char *) file.data, "r");
    if (bio == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open \"%V\"", &file);
        return NGX_ERROR;
    }

    /*
     * The "" passphrase opens an unencrypted key and a key encrypted with
     * an empty passphrase, and never makes OpenSSL prompt on a terminal.
     */
    if (is_key) {
        pair->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *) "");

    } else {
        pair->cert = PEM_read_bio_X509(bio, NULL, NULL, (void *) "");
    }

    BIO_free(bio);

    if (is_key ? pair->key == NULL : pair->cert == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" holds no PEM %s%s", &file,
                           is_key ? "private key" : "certificate",
                           is_key ? " (or it has a passphrase)" : "");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the generic slots, on the SCEP part of the loc conf */

char *
ngx_http_mdm_scep_sec_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    return ngx_conf_set_sec_slot(cf, cmd, mlcf->scep);
}


char *
ngx_http_mdm_scep_str_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    return ngx_conf_set_str_slot(cf, cmd, mlcf->scep);
}


char *
ngx_http_mdm_scep_num_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    return ngx_conf_set_num_slot(cf, cmd, mlcf->scep);
}


char *
ngx_http_mdm_scep_flag_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    return ngx_conf_set_flag_slot(cf, cmd, mlcf->scep);
}


/* the static challenge from a file, without trailing newlines and spaces */

char *
ngx_http_mdm_scep_challenge_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ssize_t                    n;
    ngx_fd_t                   fd;
    ngx_str_t                 *value, name;
    ngx_http_mdm_scep_conf_t  *scf;

    scf = mlcf->scep;

    if (scf->challenge.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open mdm_scep_challenge_file \"%V\"",
                           &name);
        return NGX_CONF_ERROR;
    }

    scf->challenge.data = ngx_pnalloc(cf->pool,
                                      NGX_HTTP_MDM_SCEP_CHALLENGE_MAX + 1);
    if (scf->challenge.data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, scf->challenge.data,
                    NGX_HTTP_MDM_SCEP_CHALLENGE_MAX + 1);
    ngx_close_file(fd);

    while (n > 0 && (scf->challenge.data[n - 1] == '\n'
                     || scf->challenge.data[n - 1] == '\r'
                     || scf->challenge.data[n - 1] == ' '))
    {
        n--;
    }

    if (n <= 0 || n > NGX_HTTP_MDM_SCEP_CHALLENGE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_scep_challenge_file \"%V\" is empty or over "
                           "255 bytes", &name);
        return NGX_CONF_ERROR;
    }

    scf->challenge.len = n;

    return NGX_CONF_OK;
}
