
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The mdm_identity and mdm_identity_ca directives.
 */


#include "ngx_http_mdm_identity_private.h"


static char *ngx_http_mdm_identity_from(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_mdm_identity_source_t *src);
static void ngx_http_mdm_identity_ca_cleanup(void *data);


/* mdm_identity off | signature | tls | header NAME from=... ... */

char *
ngx_http_mdm_identity_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_mdm_identity_source_t  *src;

    if (mlcf->identity != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mlcf->identity = ngx_array_create(cf->pool, 2,
                                   sizeof(ngx_http_mdm_identity_source_t));
    if (mlcf->identity == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        src = ngx_array_push(mlcf->identity);
        if (src == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_null(&src->header);
        src->from = NULL;

        if (ngx_strcmp(value[i].data, "signature") == 0) {
            src->type = NGX_HTTP_MDM_ID_SIGNATURE;

        } else if (ngx_strcmp(value[i].data, "tls") == 0) {
            src->type = NGX_HTTP_MDM_ID_TLS;

        } else if (ngx_strcmp(value[i].data, "header") == 0
                   && i + 1 < cf->args->nelts)
        {
            src->type = NGX_HTTP_MDM_ID_HEADER;

            i++;
            src->header.len = value[i].len;
            src->header.data = ngx_pnalloc(cf->pool, value[i].len + 1);
            if (src->header.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_strlow(src->header.data, value[i].data, value[i].len);
            src->header.data[value[i].len] = '\0';

            /*
             * Any client can send the header: only the TLS terminators
             * that set it may be trusted with it, and the admin names them
             */
            if (i + 1 == cf->args->nelts
                || ngx_strncmp(value[i + 1].data, "from=", 5) != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"header %V\" needs \"from=CIDR[,CIDR...]"
                                   "\" after it, naming the addresses of the "
                                   "TLS terminators that set it (and strip "
                                   "it from clients), or \"from=any\" to "
                                   "trust it from every client",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            i++;

            if (ngx_http_mdm_identity_from(cf, &value[i], src)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid identity source \"%V\": expected "
                               "\"signature\", \"tls\", \"header NAME "
                               "from=CIDR[,CIDR...]\" or \"off\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* from=any, or from=CIDR[,CIDR...] (addresses, IPv4 or IPv6, or unix:) */

static char *
ngx_http_mdm_identity_from(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_mdm_identity_source_t *src)
{
    u_char      *p, *last, *comma;
    ngx_int_t    rc;
    ngx_str_t    text;
    ngx_cidr_t  *cidr;

    p = value->data + 5;
    last = value->data + value->len;

    if (last - p == 3 && ngx_strncmp(p, "any", 3) == 0) {
        src->from = NULL;
        return NGX_CONF_OK;
    }

    src->from = ngx_array_create(cf->pool, 2, sizeof(ngx_cidr_t));
    if (src->from == NULL) {
        return NGX_CONF_ERROR;
    }

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');

        text.data = p;
        text.len = (comma ? comma : last) - p;

        cidr = ngx_array_push(src->from);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(cidr, sizeof(ngx_cidr_t));

#if (NGX_HAVE_UNIX_DOMAIN)
        if (text.len == 5 && ngx_strncmp(text.data, "unix:", 5) == 0) {
            cidr->family = AF_UNIX;
            rc = NGX_OK;

        } else
#endif
        {
            rc = (text.len == 0) ? NGX_ERROR : ngx_ptocidr(&text, cidr);
        }

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address \"%V\" in \"%V\": expected "
                               "an IPv4 or IPv6 address or CIDR, \"unix:\", "
                               "or \"from=any\"", &text, value);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "low address bits of %V are meaningless",
                               &text);
        }

        if (comma == NULL) {
            break;
        }

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


/* mdm_identity_ca FILE: self-signed certificates are the roots */

char *
ngx_http_mdm_identity_ca_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    X509                *x;
    BIO                 *bio;
    u_char               md[EVP_MAX_MD_SIZE];
    ngx_str_t           *value;
    ngx_uint_t           roots;
    unsigned int         mdlen;
    EVP_MD_CTX          *fp;
    ngx_http_mdm_ca_t   *ca;
    ngx_pool_cleanup_t  *cln;

    if (mlcf->ca != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ca = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_ca_t));
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (ca == NULL || cln == NULL) {
        return NGX_CONF_ERROR;
    }

    ca->file = value[1];
    if (ngx_conf_full_name(cf->cycle, &ca->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ca->store = X509_STORE_new();
    ca->untrusted = sk_X509_new_null();

    cln->handler = ngx_http_mdm_identity_ca_cleanup;
    cln->data = ca;

    if (ca->store == NULL || ca->untrusted == NULL) {
        return NGX_CONF_ERROR;
    }

    bio = BIO_new_file((char *) ca->file.data, "r");
    if (bio == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open mdm_identity_ca \"%V\"", &ca->file);
        return NGX_CONF_ERROR;
    }

    roots = 0;

    /*
     * The fingerprint names this CA material in the shared verdict zone:
     * verdicts outlive a reload while it stays the same, and a changed
     * file never meets the verdicts of the old one.
     */
    fp = EVP_MD_CTX_new();
    if (fp == NULL || EVP_DigestInit_ex(fp, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(fp);
        BIO_free(bio);
        return NGX_CONF_ERROR;
    }

    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {

        if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1
            || EVP_DigestUpdate(fp, md, mdlen) != 1)
        {
            X509_free(x);
            EVP_MD_CTX_free(fp);
            BIO_free(bio);
            return NGX_CONF_ERROR;
        }

        if (X509_check_issued(x, x) == X509_V_OK) {
            if (X509_STORE_add_cert(ca->store, x) != 1) {
                X509_free(x);
                EVP_MD_CTX_free(fp);
                BIO_free(bio);
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "cannot add a root from \"%V\"", &ca->file);
                return NGX_CONF_ERROR;
            }

            X509_free(x);
            roots++;
            continue;
        }

        if (sk_X509_push(ca->untrusted, x) == 0) {
            X509_free(x);
            EVP_MD_CTX_free(fp);
            BIO_free(bio);
            return NGX_CONF_ERROR;
        }
    }

    BIO_free(bio);
    ERR_clear_error();

    if (EVP_DigestFinal_ex(fp, ca->fingerprint, &mdlen) != 1) {
        EVP_MD_CTX_free(fp);
        return NGX_CONF_ERROR;
    }

    EVP_MD_CTX_free(fp);

    if (roots == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_identity_ca \"%V\" holds no self-signed root "
                           "certificate", &ca->file);
        return NGX_CONF_ERROR;
    }

    mlcf->ca = ca;

    return NGX_CONF_OK;
}


static void
ngx_http_mdm_identity_ca_cleanup(void *data)
{
    ngx_http_mdm_ca_t  *ca = data;

    X509_STORE_free(ca->store);
    sk_X509_pop_free(ca->untrusted, X509_free);
}
