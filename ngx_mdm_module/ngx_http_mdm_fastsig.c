
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The Mdm-Signature fast path.  A device signs every request with the same
 * certificate, so once its certificate has passed the full verification
 * (CMS parse, chain, purpose) it is kept, with its public key, in a bounded
 * per-worker cache keyed by the SHA-256 of its DER.  A request whose
 * signature carries a cached certificate then costs a walk of the DER, two
 * digests and one signature verify.  A certificate the cache knows nothing
 * of gets its chain checked from its DER (ngx_http_mdm_fastsig_chain.c)
 * and a key entry, instead of the full verification.
 *
 * The walk (ngx_http_mdm_fastsig_cms.c) accepts only the plain shape
 * devices send; anything else, and every failure, goes to the full path,
 * which gives the verdict and its reason: both paths accept exactly the
 * same requests.  The certificate cache is ngx_http_mdm_fastsig_cache.c;
 * this file is the verification itself.
 */


#include "ngx_http_mdm_metrics.h"
#include "ngx_http_mdm_fastsig.h"
#include "ngx_http_mdm_fastsig_der.h"
#include "ngx_http_mdm_fastsig_cache.h"
#include "ngx_http_mdm_fastsig_chain.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>


static const EVP_MD *ngx_http_mdm_fastsig_digest(int nid);
static ngx_int_t ngx_http_mdm_fastsig_ready(ngx_http_mdm_fastsig_entry_t *e,
    const EVP_MD *md);
static ngx_int_t ngx_http_mdm_fastsig_sig_fits(EVP_PKEY *pkey, int sig_nid);


/*
 * OpenSSL 3 looks algorithms up by name and builds contexts on every
 * one-shot call, which costs as much as the RSA verify itself: the digests
 * are fetched once, one digest context is reused, and each cached key keeps
 * a context ready to verify.
 */
static EVP_MD                        *ngx_http_mdm_fastsig_md[4];
static EVP_MD_CTX                    *ngx_http_mdm_fastsig_mdctx;


ngx_int_t
ngx_http_mdm_fastsig_init(ngx_cycle_t *cycle, ngx_uint_t size,
    ngx_uint_t verdicts)
{
    ngx_uint_t  i;

    static const char  *names[] = { "SHA256", "SHA384", "SHA512", "SHA1" };

    if (size == 0) {
        return NGX_OK;
    }

    for (i = 0; i < 4; i++) {
        ngx_http_mdm_fastsig_md[i] = EVP_MD_fetch(NULL, names[i], NULL);
    }

    ngx_http_mdm_fastsig_mdctx = EVP_MD_CTX_new();

    if (ngx_http_mdm_der_init() != NGX_OK
        || ngx_http_mdm_fastsig_cache_init(cycle, size, verdicts) != NGX_OK
        || ngx_http_mdm_fastsig_mdctx == NULL
        || ngx_http_mdm_fastsig_md[0] == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_mdm_fastsig_exit(void)
{
    ngx_uint_t  i;

    ngx_http_mdm_fastsig_cache_exit();
    ngx_http_mdm_fastsig_chain_exit();

    for (i = 0; i < 4; i++) {
        EVP_MD_free(ngx_http_mdm_fastsig_md[i]);
        ngx_http_mdm_fastsig_md[i] = NULL;
    }

    EVP_MD_CTX_free(ngx_http_mdm_fastsig_mdctx);
    ngx_http_mdm_fastsig_mdctx = NULL;
}


/*
 * NGX_OK: the signature verifies with a cached, verified certificate, and
 * id is filled.  NGX_DECLINED: the full path decides.
 */

ngx_int_t
ngx_http_mdm_fastsig_verify(ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *der,
    ngx_str_t *body, ngx_http_mdm_identity_t *id)
{
    u_char                          key[SHA256_DIGEST_LENGTH];
    u_char                          md[EVP_MAX_MD_SIZE];
    time_t                          now, signed_at;
    unsigned int                    mdlen;
    EVP_MD_CTX                     *ctx;
    const EVP_MD                   *dmd;
    ngx_http_mdm_signed_t           s;
    ngx_http_mdm_fastsig_entry_t   *e;

    if (!ngx_http_mdm_fastsig_cached() || !mlcf->identity_cache) {
        return NGX_DECLINED;
    }

    ngx_memzero(&s, sizeof(ngx_http_mdm_signed_t));

    if (ngx_http_mdm_fastsig_walk(der, &s) != NGX_OK) {
        return NGX_DECLINED;
    }

    dmd = ngx_http_mdm_fastsig_digest(s.md_nid);
    if (dmd == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_mdm_fastsig_mdctx;

    if (EVP_DigestInit_ex2(ctx, ngx_http_mdm_fastsig_md[0], NULL) != 1
        || EVP_DigestUpdate(ctx, s.cert, s.cert_len) != 1
        || EVP_DigestFinal_ex(ctx, key, &mdlen) != 1)
    {
        return NGX_DECLINED;
    }

    e = ngx_http_mdm_fastsig_find(key);
    now = ngx_time();

    ngx_http_mdm_metrics_cache(e != NULL);

    if (e == NULL || e->ca != mlcf->ca || now >= e->expires) {
        e = ngx_http_mdm_fastsig_promote(mlcf, key, &s, now);

        if (e == NULL) {
            e = ngx_http_mdm_fastsig_first_sight(mlcf, key, &s, now);
        }
    }

    /* X509_cmp_time() counts the notAfter second as expired */
    if (e == NULL || now >= e->not_after
        || now + mlcf->skew < e->not_before
        || s.issuer_len != e->issuer_len || s.serial_len != e->serial_len
        || ngx_memcmp(s.issuer, e->issuer, s.issuer_len) != 0
        || ngx_memcmp(s.serial, e->serial, s.serial_len) != 0)
    {
        return NGX_DECLINED;
    }

    /*
     * OpenSSL verifies an RSA key only under rsaEncryption or an RSA
     * signature OID, and an EC key under an ECDSA one
     */
    if (ngx_http_mdm_fastsig_sig_fits(e->pkey, s.sig_nid) != NGX_OK) {
        return NGX_DECLINED;
    }

    /* the skew rule of the full path */
    if (s.signing_time) {
        signed_at = ngx_http_mdm_der_time(s.signing_time, s.attrs
                                                          + s.attrs_len);
        if (signed_at == (time_t) -1
            || signed_at + mlcf->skew < e->not_before)
        {
            return NGX_DECLINED;
        }
    }

    /* the content: its digest is what the signed attributes vouch for */
    if (EVP_DigestInit_ex2(ctx, dmd, NULL) != 1
        || EVP_DigestUpdate(ctx, body->data, body->len) != 1
        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1
        || mdlen != s.digest_len
        || ngx_memcmp(md, s.digest, mdlen) != 0)
    {
        return NGX_DECLINED;
    }

    /* the signature is over the attributes encoded as a SET (0x31) */
    if (EVP_DigestInit_ex2(ctx, dmd, NULL) != 1
        || EVP_DigestUpdate(ctx, "\x31", 1) != 1
        || EVP_DigestUpdate(ctx, s.attrs + 1, s.attrs_len - 1) != 1
        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1
        || ngx_http_mdm_fastsig_ready(e, dmd) != NGX_OK
        || EVP_PKEY_verify(e->pctx, s.sig, s.sig_len, md, mdlen) != 1)
    {
        ERR_clear_error();
        return NGX_DECLINED;
    }

    ngx_memcpy(id->sha256, e->hex, sizeof(id->sha256));
    id->not_after = e->not_after;
    id->source = "Mdm-Signature";

    return NGX_OK;
}


/* the fetched digest for a digestAlgorithm the walk accepted */

static const EVP_MD *
ngx_http_mdm_fastsig_digest(int nid)
{
    switch (nid) {
    case NID_sha256:
        return ngx_http_mdm_fastsig_md[0];
    case NID_sha384:
        return ngx_http_mdm_fastsig_md[1];
    case NID_sha512:
        return ngx_http_mdm_fastsig_md[2];
    case NID_sha1:
        return ngx_http_mdm_fastsig_md[3];
    default:
        return NULL;
    }
}


static ngx_int_t
ngx_http_mdm_fastsig_sig_fits(EVP_PKEY *pkey, int sig_nid)
{
    switch (sig_nid) {

    case NID_rsaEncryption:
    case NID_sha1WithRSAEncryption:
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
        return (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA)
               ? NGX_OK : NGX_DECLINED;

    default: /* the ECDSA OIDs the walk lets through */
        return (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC)
               ? NGX_OK : NGX_DECLINED;
    }
}


/* the entry's verify context, for digests made with md */

static ngx_int_t
ngx_http_mdm_fastsig_ready(ngx_http_mdm_fastsig_entry_t *e, const EVP_MD *md)
{
    if (e->pctx && e->md == md) {
        return NGX_OK;
    }

    EVP_PKEY_CTX_free(e->pctx);
    e->md = NULL;

    e->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, e->pkey, NULL);

    if (e->pctx == NULL
        || EVP_PKEY_verify_init(e->pctx) != 1
        || EVP_PKEY_CTX_set_signature_md(e->pctx, md) != 1)
    {
        EVP_PKEY_CTX_free(e->pctx);
        e->pctx = NULL;
        return NGX_DECLINED;
    }

    e->md = md;

    return NGX_OK;
}
