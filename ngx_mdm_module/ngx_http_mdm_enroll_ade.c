
/*
 * Copyright (C) ngx_mdm contributors
 *
 * ADE (DEP) enrollment: the MachineInfo a device sends to the profile URL,
 * a CMS SignedData (attached) signed by the device's own identity, which
 * chains to Apple's device CA (mdm_enroll_device_ca).  The signature is
 * checked on the raw bytes first; only a verified plist reaches the
 * parser, and that is the module's hardened one.
 */


#include "ngx_http_mdm_enroll.h"
#include "ngx_http_mdm_plist.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>


static void ngx_http_mdm_enroll_store_cleanup(void *data);


ngx_int_t
ngx_http_mdm_enroll_machineinfo(ngx_http_request_t *r,
    ngx_http_mdm_enroll_conf_t *ecf, ngx_str_t *der, plist_t *out,
    const char **reason)
{
    BIO                  *content;
    long                  len;
    char                 *p;
    ngx_int_t             rc;
    ngx_str_t             body;
    const u_char         *d;
    CMS_ContentInfo      *cms;
    ASN1_OCTET_STRING   **os;

    rc = NGX_DECLINED;
    content = NULL;

    d = der->data;
    cms = d2i_CMS_ContentInfo(NULL, &d, (long) der->len);

    if (cms == NULL || d != der->data + der->len
        || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
    {
        *reason = "MachineInfo is not a CMS SignedData";
        goto done;
    }

    os = CMS_get0_content(cms);
    if (os == NULL || *os == NULL) {
        *reason = "MachineInfo SignedData is detached: no plist inside";
        goto done;
    }

    if (ecf->device_ca == NULL) {
        /* mdm_enroll_device_ca off: said at startup */
        body.data = (*os)->data;
        body.len = (*os)->length;

    } else {
        content = BIO_new(BIO_s_mem());
        if (content == NULL) {
            rc = NGX_ERROR;
            goto done;
        }

        /* CMS_BINARY: the plist is bytes, not MIME text to canonicalize */
        if (CMS_verify(cms, NULL, ecf->device_ca, NULL, content, CMS_BINARY)
            != 1)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "mdm: MachineInfo: %s",
                           ERR_reason_error_string(ERR_peek_last_error()));
            *reason = "MachineInfo signature does not verify against "
                      "mdm_enroll_device_ca";
            goto done;
        }

        len = BIO_get_mem_data(content, &p);
        body.data = (u_char *) p;
        body.len = len;
    }

    /* the parser keeps nothing of the bytes: the tree is its own copy */
    *out = ngx_http_mdm_plist_parse_body(r, &body, reason);

    rc = (*out == NULL) ? NGX_DECLINED : NGX_OK;

done:

    ERR_clear_error();
    BIO_free(content);
    CMS_ContentInfo_free(cms);

    return rc;
}


/*
 * mdm_enroll_device_ca FILE | off: every certificate of FILE is a trust
 * anchor, so that Apple's "iPhone Device CA" (an intermediate) may be given
 * alone, as MicroMDM checks against it.
 */

char *
ngx_http_mdm_enroll_device_ca_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    X509                *x;
    BIO                 *bio;
    ngx_str_t           *value, file;
    ngx_uint_t           n;
    X509_STORE          *store;
    ngx_pool_cleanup_t  *cln;

    if (mlcf->enroll.device_ca_set != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mlcf->enroll.device_ca_set = 2;
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "mdm_enroll_device_ca off: any client can send "
                           "MachineInfo for any device serial");
        return NGX_CONF_OK;
    }

    file = value[1];
    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    store = X509_STORE_new();
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (store == NULL || cln == NULL) {
        X509_STORE_free(store);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_mdm_enroll_store_cleanup;
    cln->data = store;

    bio = BIO_new_file((char *) file.data, "r");
    if (bio == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open mdm_enroll_device_ca \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    n = 0;

    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1) {
            X509_free(x);
            BIO_free(bio);
            ERR_clear_error();
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot add a certificate of \"%V\"", &file);
            return NGX_CONF_ERROR;
        }

        X509_free(x);
        n++;
    }

    BIO_free(bio);
    ERR_clear_error();

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_enroll_device_ca \"%V\" holds no PEM "
                           "certificate", &file);
        return NGX_CONF_ERROR;
    }

    /* device identities carry no S/MIME usage; the chain is what counts */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_set_purpose(store, X509_PURPOSE_ANY);

    mlcf->enroll.device_ca = store;
    mlcf->enroll.device_ca_set = 1;

    return NGX_CONF_OK;
}


static void
ngx_http_mdm_enroll_store_cleanup(void *data)
{
    X509_STORE_free(data);
}
