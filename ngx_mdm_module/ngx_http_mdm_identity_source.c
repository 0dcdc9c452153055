
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Where the device certificate comes from: the Mdm-Signature header
 * (detached CMS SignedData over the body), the TLS client certificate, or
 * a header set by a TLS terminator.
 */


#include "ngx_http_mdm_identity_private.h"
#include "ngx_http_mdm_util.h"


static ngx_int_t ngx_http_mdm_identity_cms(ngx_http_request_t *r,
    ngx_str_t *value, ngx_str_t *body, ngx_http_mdm_presented_t *p,
    const char **reason);
static time_t ngx_http_mdm_identity_signing_time(CMS_SignerInfo *si);
static ngx_int_t ngx_http_mdm_identity_tls(ngx_http_request_t *r,
    ngx_http_mdm_presented_t *p);
static ngx_int_t ngx_http_mdm_identity_from_header(ngx_http_request_t *r,
    ngx_str_t *value, ngx_http_mdm_presented_t *p, const char **reason);


/* NGX_DECLINED: nothing there; NGX_OK: p.cert set; NGX_ABORT: bad input */

ngx_int_t
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


ngx_table_elt_t *
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
