
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Who is calling: the device identity certificate from the Mdm-Signature
 * header (detached CMS SignedData over the body), the TLS client
 * certificate, or a header set by a TLS terminator, verified against
 * mdm_identity_ca.
 */


#include "ngx_http_mdm_identity.h"
#include "ngx_http_mdm_util.h"
#include "ngx_http_mdm_fastsig.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>


typedef struct {
    X509             *cert;
    STACK_OF(X509)   *chain;        /* extra certificates the device sent */
    time_t            signing_time; /* 0 when the signature has none */
} ngx_http_mdm_presented_t;


static const char *ngx_http_mdm_identity_named(ngx_http_request_t *r,
    const char *reason, X509 *cert);
static ngx_uint_t ngx_http_mdm_identity_trusted(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src);
static const char *ngx_http_mdm_identity_untrusted(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src);
static char *ngx_http_mdm_identity_from(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_mdm_identity_source_t *src);
static ngx_int_t ngx_http_mdm_identity_fast(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *body,
    ngx_http_mdm_identity_t *id);
static ngx_int_t ngx_http_mdm_identity_present(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src, ngx_str_t *body,
    ngx_http_mdm_presented_t *p, const char **reason);
static ngx_table_elt_t *ngx_http_mdm_identity_header(ngx_http_request_t *r,
    ngx_str_t *lowcase_name);
static ngx_int_t ngx_http_mdm_identity_cms(ngx_http_request_t *r,
    ngx_str_t *value, ngx_str_t *body, ngx_http_mdm_presented_t *p,
    const char **reason);
static time_t ngx_http_mdm_identity_signing_time(CMS_SignerInfo *si);
static ngx_int_t ngx_http_mdm_identity_tls(ngx_http_request_t *r,
    ngx_http_mdm_presented_t *p);
static ngx_int_t ngx_http_mdm_identity_from_header(ngx_http_request_t *r,
    ngx_str_t *value, ngx_http_mdm_presented_t *p, const char **reason);
static const char *ngx_http_mdm_identity_check(ngx_http_mdm_loc_conf_t *mlcf,
    ngx_http_mdm_presented_t *p);
static time_t ngx_http_mdm_identity_time(const ASN1_TIME *t);
static void ngx_http_mdm_identity_cleanup(void *data);
static void ngx_http_mdm_identity_ca_cleanup(void *data);


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


/* NGX_DECLINED: nothing there; NGX_OK: p.cert set; NGX_ABORT: bad input */

static ngx_int_t
ngx_http_mdm_identity_present(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src, ngx_str_t *body,
    ngx_http_mdm_presented_t *p, const char **reason)
{
    ngx_str_t         name;
    ngx_table_elt_t  *h;

    switch (src->type) {

    case NGX_HTTP_MDM_ID_TLS:
        return ngx_http_mdm_identity_tls(r, p);

    case NGX_HTTP_MDM_ID_SIGNATURE:
        ngx_str_set(&name, "mdm-signature");
        h = ngx_http_mdm_identity_header(r, &name);
        if (h == NULL || h->value.len == 0) {
            return NGX_DECLINED;
        }
        return ngx_http_mdm_identity_cms(r, &h->value, body, p, reason);

    default: /* NGX_HTTP_MDM_ID_HEADER */
        h = ngx_http_mdm_identity_header(r, &src->header);
        if (h == NULL || h->value.len == 0) {
            return NGX_DECLINED;
        }
        return ngx_http_mdm_identity_from_header(r, &h->value, p, reason);
    }
}


static ngx_table_elt_t *
ngx_http_mdm_identity_header(ngx_http_request_t *r, ngx_str_t *lowcase_name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == lowcase_name->len
            && ngx_strncmp(h[i].lowcase_key, lowcase_name->data,
                           lowcase_name->len) == 0)
        {
            return &h[i];
        }
    }
}


static ngx_int_t
ngx_http_mdm_identity_cms(ngx_http_request_t *r, ngx_str_t *value,
    ngx_str_t *body, ngx_http_mdm_presented_t *p, const char **reason)
{
    BIO                         *content, *mem;
    ngx_str_t                    der;
    const u_char                *q;
    CMS_SignerInfo              *si;
    STACK_OF(X509)              *signers;
    CMS_ContentInfo             *cms;
    STACK_OF(CMS_SignerInfo)    *sis;

    der.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(value->len));
    if (der.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64(&der, value) != NGX_OK) {
        *reason = "Mdm-Signature is not base64";
        return NGX_ABORT;
    }

    /* d2i accepts BER, which is what Apple's devices send */
    q = der.data;
    cms = d2i_CMS_ContentInfo(NULL, &q, (long) der.len);

    if (cms == NULL) {
        *reason = "Mdm-Signature is not a CMS structure";
        return NGX_ABORT;
    }

    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        *reason = "Mdm-Signature is not CMS SignedData";
        goto failed;
    }

    if (!CMS_is_detached(cms)) {
        *reason = "Mdm-Signature is not a detached signature";
        goto failed;
    }

    sis = CMS_get0_SignerInfos(cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        *reason = "Mdm-Signature must have exactly one signer";
        goto failed;
    }

    /* matches the signer to a certificate the signature carries */
    if (CMS_set1_signers_certs(cms, NULL, 0) <= 0) {
        *reason = "Mdm-Signature does not carry its signer's certificate";
        goto failed;
    }

    /*
     * The body behind a null filter: given a memory BIO, CMS_verify() of
     * OpenSSL 3.0.19 (Debian 12's at the time) makes a copy of it that it
     * leaks when the signature names a digest it cannot set up, which a
     * device could repeat at will.
     */
    content = BIO_new(BIO_f_null());
    mem = BIO_new_mem_buf(body->data, (int) body->len);

    if (content == NULL || mem == NULL) {
        BIO_free(content);
        BIO_free(mem);
        CMS_ContentInfo_free(cms);
        return NGX_ERROR;
    }

    BIO_push(content, mem);

    /* the chain is checked separately, the same way for every source */
    if (CMS_verify(cms, NULL, NULL, content, NULL,
                   CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY | CMS_NOCRL)
        != 1)
    {
        BIO_free_all(content);
        *reason = "Mdm-Signature does not match the body";
        goto failed;
    }

    BIO_free_all(content);

    signers = CMS_get0_signers(cms);
    if (signers == NULL || sk_X509_num(signers) != 1) {
        sk_X509_free(signers);
        *reason = "Mdm-Signature has no usable signer";
        goto failed;
    }

    p->cert = sk_X509_value(signers, 0);
    X509_up_ref(p->cert);
    sk_X509_free(signers);

    p->chain = CMS_get1_certs(cms);

    si = sk_CMS_SignerInfo_value(sis, 0);
    p->signing_time = ngx_http_mdm_identity_signing_time(si);

    CMS_ContentInfo_free(cms);

    return NGX_OK;

failed:

    CMS_ContentInfo_free(cms);

    return NGX_ABORT;
}


static time_t
ngx_http_mdm_identity_signing_time(CMS_SignerInfo *si)
{
    int               i;
    ASN1_TYPE        *t;
    X509_ATTRIBUTE   *attr;

    i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    if (i < 0) {
        return 0;
    }

    attr = CMS_signed_get_attr(si, i);
    t = X509_ATTRIBUTE_get0_type(attr, 0);

    if (t == NULL
        || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME))
    {
        return 0;
    }

    return ngx_http_mdm_identity_time(t->value.asn1_string);
}


static ngx_int_t
ngx_http_mdm_identity_tls(ngx_http_request_t *r, ngx_http_mdm_presented_t *p)
{
#if (NGX_HTTP_SSL)
    STACK_OF(X509)  *chain;

    if (r->connection->ssl == NULL) {
        return NGX_DECLINED;
    }

    p->cert = SSL_get1_peer_certificate(r->connection->ssl->connection);
    if (p->cert == NULL) {
        return NGX_DECLINED;
    }

    chain = SSL_get_peer_cert_chain(r->connection->ssl->connection);
    if (chain) {
        p->chain = X509_chain_up_ref(chain);
    }

    return NGX_OK;
#else
    return NGX_DECLINED;
#endif
}


/*
 * RFC 9440 (":" base64 DER ":") or nginx's $ssl_client_escaped_cert (PEM,
 * URL-escaped; "+" is taken as a space, as Go's QueryUnescape does).
 */

static ngx_int_t
ngx_http_mdm_identity_from_header(ngx_http_request_t *r, ngx_str_t *value,
    ngx_http_mdm_presented_t *p, const char **reason)
{
    BIO           *bio;
    ngx_str_t      b64, der;
    const u_char  *q;

    if (value->data[0] == ':') {
        if (value->len < 3 || value->data[value->len - 1] != ':') {
            *reason = "certificate header is not RFC 9440 \":base64:\"";
            return NGX_ABORT;
        }

        b64.data = value->data + 1;
        b64.len = value->len - 2;

        der.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(b64.len));
        if (der.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(&der, &b64) != NGX_OK) {
            *reason = "certificate header is not valid base64";
            return NGX_ABORT;
        }

        q = der.data;
        p->cert = d2i_X509(NULL, &q, (long) der.len);

        if (p->cert == NULL) {
            *reason = "certificate header is not a DER certificate";
            return NGX_ABORT;
        }

        return NGX_OK;
    }

    /* escaped PEM: "+" may stand for the spaces of the BEGIN line */
    if (ngx_http_mdm_unescape(r->pool, value, &der, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    bio = BIO_new_mem_buf(der.data, (int) der.len);
    if (bio == NULL) {
        return NGX_ERROR;
    }

    p->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (p->cert == NULL) {
        *reason = "certificate header is neither RFC 9440 nor escaped PEM";
        return NGX_ABORT;
    }

    return NGX_OK;
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


static time_t
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
    ngx_str_t           *value;
    ngx_uint_t           roots;
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

    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {

        if (X509_check_issued(x, x) == X509_V_OK) {
            if (X509_STORE_add_cert(ca->store, x) != 1) {
                X509_free(x);
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
            BIO_free(bio);
            return NGX_CONF_ERROR;
        }
    }

    BIO_free(bio);
    ERR_clear_error();

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
