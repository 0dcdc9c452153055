
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Who is calling: the device identity certificate from the first configured
 * source that carries one (ngx_http_mdm_identity_source.c), verified
 * against mdm_identity_ca (chain, time, mdm_signature_skew).
 */


#include "ngx_http_mdm_identity_private.h"
#include "ngx_http_mdm_util.h"
#include "ngx_http_mdm_fastsig.h"


static const char *ngx_http_mdm_identity_named(ngx_http_request_t *r,
    const char *reason, X509 *cert);
static ngx_uint_t ngx_http_mdm_identity_trusted(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src);
static const char *ngx_http_mdm_identity_untrusted(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src);
static ngx_int_t ngx_http_mdm_identity_fast(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *body,
    ngx_http_mdm_identity_t *id);
static const char *ngx_http_mdm_identity_check(ngx_http_mdm_loc_conf_t *mlcf,
    ngx_http_mdm_presented_t *p);
static void ngx_http_mdm_identity_cleanup(void *data);


ngx_int_t
ngx_http_mdm_identity_verify(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *body,
    ngx_http_mdm_identity_t *id, const char **reason)
{
    u_char                          md[EVP_MAX_MD_SIZE];
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    unsigned int                    n;
    ngx_table_elt_t                *h;
    ngx_pool_cleanup_t             *cln;
    ngx_http_mdm_presented_t        p;
    ngx_http_mdm_identity_source_t *src, *untrusted;

    src = mlcf->identity->elts;
    untrusted = NULL;

    for (i = 0; i < mlcf->identity->nelts; i++) {

        if (src[i].type == NGX_HTTP_MDM_ID_HEADER
            && !ngx_http_mdm_identity_trusted(r, &src[i]))
        {
            /* a copy a client set itself: as if it were not there */
            h = ngx_http_mdm_identity_header(r, &src[i].header);

            if (untrusted == NULL && h && h->value.len) {
                untrusted = &src[i];
            }

            continue;
        }

        if (src[i].type == NGX_HTTP_MDM_ID_SIGNATURE
            && ngx_http_mdm_identity_fast(r, mlcf, body, id) == NGX_OK)
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "mdm: signature verified with a cached "
                           "certificate");
            return NGX_OK;
        }

        ngx_memzero(&p, sizeof(ngx_http_mdm_presented_t));

        rc = ngx_http_mdm_identity_present(r, &src[i], body, &p, reason);

        if (rc == NGX_DECLINED) {
            /* this source carries nothing: try the next one */
            continue;
        }

        /* from here on p holds references that the pool must release */

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            X509_free(p.cert);
            sk_X509_pop_free(p.chain, X509_free);
            return NGX_ERROR;
        }

        cln->handler = ngx_http_mdm_identity_cleanup;
        cln->data = ngx_palloc(r->pool, sizeof(ngx_http_mdm_presented_t));

        if (cln->data == NULL) {
            cln->handler = NULL;
            X509_free(p.cert);
            sk_X509_pop_free(p.chain, X509_free);
            return NGX_ERROR;
        }

        ngx_memcpy(cln->data, &p, sizeof(ngx_http_mdm_presented_t));

        if (rc != NGX_OK) {
            ERR_clear_error();
            return (rc == NGX_ABORT) ? NGX_DECLINED : NGX_ERROR;
        }

        *reason = ngx_http_mdm_identity_check(mlcf, &p);

        ERR_clear_error();

        if (*reason) {
            *reason = ngx_http_mdm_identity_named(r, *reason, p.cert);
            return NGX_DECLINED;
        }

        id->cert = p.cert;
        id->not_after = ngx_http_mdm_identity_time(X509_get0_notAfter(p.cert));

        if (X509_digest(p.cert, EVP_sha256(), md, &n) != 1) {
            ERR_clear_error();
            return NGX_ERROR;
        }

        ngx_hex_dump(id->sha256, md, n);

        switch (src[i].type) {
        case NGX_HTTP_MDM_ID_SIGNATURE:
            id->source = "Mdm-Signature";
            ngx_http_mdm_fastsig_store(mlcf, p.cert, md,
                ngx_http_mdm_identity_time(X509_get0_notBefore(p.cert)),
                id->not_after);
            break;
        case NGX_HTTP_MDM_ID_TLS:
            id->source = "TLS";
            break;
        default:
            id->source = (const char *) src[i].header.data;
        }

        return NGX_OK;
    }

    if (untrusted) {
        *reason = ngx_http_mdm_identity_untrusted(r, untrusted);
        id->status = NGX_HTTP_FORBIDDEN;
        return NGX_DECLINED;
    }

    *reason = "no device certificate: no Mdm-Signature header, "
              "TLS client certificate or certificate header";

    return NGX_DECLINED;
}


/*
 * The reason a presented certificate was refused, with its SHA-256: the
 * body is not parsed before the identity is verified, so the log line
 * cannot name the enrollment, but mdm:certidx:SHA256 and the enrollment's
 * bindings can.
 */

static const char *
ngx_http_mdm_identity_named(ngx_http_request_t *r, const char *reason,
    X509 *cert)
{
    u_char        md[EVP_MAX_MD_SIZE], *p, *last;
    size_t        len;
    unsigned int  n;

    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
        ERR_clear_error();
        return reason;
    }

    len = ngx_strlen(reason) + sizeof(" (certificate sha256 )") + 64;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return reason;
    }

    last = ngx_snprintf(p, len - 1, "%s (certificate sha256 ", reason);
    last = ngx_hex_dump(last, md, n);
    *last++ = ')';
    *last = '\0';

    return (const char *) p;
}


/*
 * Whether the peer may set a header source's header: the address of the
 * connection (after the realip module, when it is configured), never a
 * header such as X-Forwarded-For.
 */

static ngx_uint_t
ngx_http_mdm_identity_trusted(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src)
{
    if (src->from == NULL) {
        return 1;
    }

    return ngx_cidr_match(r->connection->sockaddr, src->from) == NGX_OK;
}


static const char *
ngx_http_mdm_identity_untrusted(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src)
{
    u_char  *p, *last;
    size_t   len;

    len = sizeof("certificate header \"\" from an address outside its "
                 "from= ignored, and no other device certificate") + 32;

    p = ngx_pnalloc(r->pool, len + src->header.len);
    if (p == NULL) {
        return "certificate header from an address outside its from= "
               "ignored";
    }

    last = ngx_snprintf(p, len + src->header.len - 1,
                        "certificate header \"%V\" from an address outside "
                        "its from= ignored, and no other device certificate",
                        &src->header);
    *last = '\0';

    return (const char *) p;
}


/* a signature by a certificate the full path verified before */

static ngx_int_t
ngx_http_mdm_identity_fast(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *body,
    ngx_http_mdm_identity_t *id)
{
    ngx_str_t         name, der;
    ngx_table_elt_t  *h;

    ngx_str_set(&name, "mdm-signature");
    h = ngx_http_mdm_identity_header(r, &name);
    if (h == NULL || h->value.len == 0) {
        return NGX_DECLINED;
    }

    der.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(h->value.len));
    if (der.data == NULL || ngx_decode_base64(&der, &h->value) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_mdm_fastsig_verify(mlcf, &der, body, id);
}


/* the chain, for client authentication, at the current time */

static const char *
ngx_http_mdm_identity_check(ngx_http_mdm_loc_conf_t *mlcf,
    ngx_http_mdm_presented_t *p)
{
    int               i, err;
    time_t            now, not_before, at;
    const char       *reason;
    X509_STORE_CTX   *xctx;
    STACK_OF(X509)   *untrusted;

    now = ngx_time();
    not_before = ngx_http_mdm_identity_time(X509_get0_notBefore(p->cert));

    /*
     * Devices sign with their own clock, and SCEP servers issue with
     * theirs: a signature or a certificate a little "from the future"
     * is clock skew, not forgery (nanomdm#73, micromdm#886).
     */

    if (p->signing_time && p->signing_time + mlcf->skew < not_before) {
        return "Mdm-Signature signingTime is before the certificate's "
               "notBefore (more than mdm_signature_skew)";
    }

    at = now;
    if (now < not_before && not_before - now <= mlcf->skew) {
        at = not_before;
    }

    untrusted = sk_X509_dup(mlcf->ca->untrusted);
    if (untrusted == NULL) {
        return "out of memory";
    }

    for (i = 0; p->chain && i < sk_X509_num(p->chain); i++) {
        if (X509_cmp(sk_X509_value(p->chain, i), p->cert) != 0) {
            sk_X509_push(untrusted, sk_X509_value(p->chain, i));
        }
    }

    xctx = X509_STORE_CTX_new();
    if (xctx == NULL
        || X509_STORE_CTX_init(xctx, mlcf->ca->store, p->cert, untrusted)
           != 1)
    {
        X509_STORE_CTX_free(xctx);
        sk_X509_free(untrusted);
        return "out of memory";
    }

    X509_STORE_CTX_set_purpose(xctx, X509_PURPOSE_SSL_CLIENT);
    X509_STORE_CTX_set_time(xctx, 0, at);

    reason = NULL;

    if (X509_verify_cert(xctx) != 1) {
        err = X509_STORE_CTX_get_error(xctx);

        switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            reason = "device certificate has expired";
            break;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            reason = "device certificate is not yet valid";
            break;
        case X509_V_ERR_INVALID_PURPOSE:
            reason = "device certificate is not for client authentication";
            break;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            reason = "device certificate is not issued by mdm_identity_ca";
            break;
        default:
            reason = X509_verify_cert_error_string(err);
        }
    }

    X509_STORE_CTX_free(xctx);
    sk_X509_free(untrusted);

    return reason;
}


time_t
ngx_http_mdm_identity_time(const ASN1_TIME *t)
{
    struct tm  tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }

    return timegm(&tm);
}


static void
ngx_http_mdm_identity_cleanup(void *data)
{
    ngx_http_mdm_presented_t  *p = data;

    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
}
