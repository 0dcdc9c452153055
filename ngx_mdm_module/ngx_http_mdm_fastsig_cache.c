
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The certificate cache of the Mdm-Signature fast path, per worker and
 * bounded.  Key entries keep a certificate that passed the full
 * verification (CMS parse, chain, purpose) with its public key, keyed by
 * the SHA-256 of its DER.  Behind them a larger table keeps only verdicts:
 * the SHA-256 of a verified certificate, its CA and validity.  A device
 * whose key entry was evicted has its RSA key rebuilt from the certificate
 * it sends (a few µs, where parsing the certificate again through OpenSSL
 * 3's decoders costs more than 100 µs), so a fleet larger than the key
 * cache does not fall back to the full verification.  The verdicts are
 * kept in a zone of shared memory (ngx_http_mdm_fastsig_shm.c), for every
 * worker and across reloads, or with "verdicts=" in a per-worker table.
 */


#include "ngx_http_mdm_fastsig.h"
#include "ngx_http_mdm_fastsig_cache.h"
#include "ngx_http_mdm_fastsig_shm.h"

#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>


/*
 * Entries per set: a direct-mapped cache would let two devices whose keys
 * share a slot evict each other on every request.
 */
#define NGX_HTTP_MDM_FASTSIG_WAYS  4


/* a certificate that passed the full verification, without its key */
typedef struct {
    u_char             key[SHA256_DIGEST_LENGTH];
    ngx_http_mdm_ca_t *ca;
    time_t             not_before;
    time_t             not_after;
    time_t             expires;
} ngx_http_mdm_fastsig_verdict_t;


static ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_set(u_char *key);
static ngx_http_mdm_fastsig_verdict_t *ngx_http_mdm_fastsig_vset(u_char *key);
static ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_slot(u_char *key);
static ngx_int_t ngx_http_mdm_fastsig_copy(u_char **dst, size_t *dst_len,
    u_char *src, size_t len);
static EVP_PKEY *ngx_http_mdm_fastsig_rsa_key(ngx_http_mdm_der_t *n,
    ngx_http_mdm_der_t *e);
static void ngx_http_mdm_fastsig_remember(ngx_http_mdm_loc_conf_t *mlcf,
    u_char *key, time_t not_before, time_t not_after, time_t expires);
static void ngx_http_mdm_fastsig_clear(ngx_http_mdm_fastsig_entry_t *e);


static ngx_http_mdm_fastsig_entry_t  *ngx_http_mdm_fastsig_cache;
static ngx_uint_t                     ngx_http_mdm_fastsig_size;
static ngx_uint_t                     ngx_http_mdm_fastsig_sets;

static ngx_http_mdm_fastsig_verdict_t *ngx_http_mdm_fastsig_verdicts;
static ngx_uint_t                      ngx_http_mdm_fastsig_vsets;

/*
 * The verdict this worker just found in the zone: admit() remembers it
 * again right after, which need not take the zone's lock a second time.
 */
static u_char                          ngx_http_mdm_fastsig_found[
                                                      SHA256_DIGEST_LENGTH];
static time_t                          ngx_http_mdm_fastsig_found_expires;


ngx_int_t
ngx_http_mdm_fastsig_cache_init(ngx_cycle_t *cycle, ngx_uint_t size,
    ngx_uint_t verdicts)
{
    ngx_http_mdm_fastsig_sets = (size + NGX_HTTP_MDM_FASTSIG_WAYS - 1)
                                / NGX_HTTP_MDM_FASTSIG_WAYS;
    size = ngx_http_mdm_fastsig_sets * NGX_HTTP_MDM_FASTSIG_WAYS;

    if (size > NGX_MAX_SIZE_T_VALUE / sizeof(ngx_http_mdm_fastsig_entry_t)) {
        return NGX_ERROR;
    }

    ngx_http_mdm_fastsig_cache = ngx_calloc(
                               size * sizeof(ngx_http_mdm_fastsig_entry_t),
                               cycle->log);
    if (ngx_http_mdm_fastsig_cache == NULL) {
        return NGX_ERROR;
    }

    ngx_http_mdm_fastsig_size = size;

    if (verdicts == 0) {
        return NGX_OK;
    }

    ngx_http_mdm_fastsig_vsets = (verdicts + NGX_HTTP_MDM_FASTSIG_WAYS - 1)
                                 / NGX_HTTP_MDM_FASTSIG_WAYS;

    if (ngx_http_mdm_fastsig_vsets > NGX_MAX_SIZE_T_VALUE
                                     / NGX_HTTP_MDM_FASTSIG_WAYS
                                     / sizeof(ngx_http_mdm_fastsig_verdict_t))
    {
        ngx_http_mdm_fastsig_vsets = 0;
        return NGX_ERROR;
    }

    ngx_http_mdm_fastsig_verdicts = ngx_calloc(ngx_http_mdm_fastsig_vsets
                                    * NGX_HTTP_MDM_FASTSIG_WAYS
                                    * sizeof(ngx_http_mdm_fastsig_verdict_t),
                                    cycle->log);
    if (ngx_http_mdm_fastsig_verdicts == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_mdm_fastsig_cache_exit(void)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_mdm_fastsig_size; i++) {
        ngx_http_mdm_fastsig_clear(&ngx_http_mdm_fastsig_cache[i]);
    }

    ngx_free(ngx_http_mdm_fastsig_cache);
    ngx_http_mdm_fastsig_cache = NULL;
    ngx_http_mdm_fastsig_size = 0;

    ngx_free(ngx_http_mdm_fastsig_verdicts);
    ngx_http_mdm_fastsig_verdicts = NULL;
    ngx_http_mdm_fastsig_vsets = 0;
}


ngx_uint_t
ngx_http_mdm_fastsig_cached(void)
{
    return ngx_http_mdm_fastsig_size != 0;
}


/* after the full path accepted cert for this CA: remember it */

void
ngx_http_mdm_fastsig_store(ngx_http_mdm_loc_conf_t *mlcf, X509 *cert,
    u_char *key, time_t not_before, time_t not_after)
{
    int                             len;
    u_char                         *p;
    EVP_PKEY                       *pkey;
    ngx_http_mdm_fastsig_entry_t   *e;

    if (ngx_http_mdm_fastsig_size == 0 || !mlcf->identity_cache) {
        return;
    }

    pkey = X509_get0_pubkey(cert);
    if (pkey == NULL) {
        return;
    }

    e = ngx_http_mdm_fastsig_slot(key);

    len = i2d_X509_NAME(X509_get_issuer_name(cert), NULL);
    e->issuer = (len > 0) ? ngx_alloc(len, ngx_cycle->log) : NULL;
    if (e->issuer == NULL) {
        return;
    }

    p = e->issuer;
    e->issuer_len = i2d_X509_NAME(X509_get_issuer_name(cert), &p);

    len = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), NULL);
    e->serial = (len > 0) ? ngx_alloc(len, ngx_cycle->log) : NULL;
    if (e->serial == NULL) {
        ngx_http_mdm_fastsig_clear(e);
        return;
    }

    p = e->serial;
    e->serial_len = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &p);

    EVP_PKEY_up_ref(pkey);
    e->pkey = pkey;

    ngx_memcpy(e->key, key, SHA256_DIGEST_LENGTH);
    ngx_hex_dump(e->hex, key, SHA256_DIGEST_LENGTH);
    e->ca = mlcf->ca;
    e->not_before = not_before;
    e->not_after = not_after;
    e->expires = ngx_time() + NGX_HTTP_MDM_FASTSIG_TTL;

    ngx_http_mdm_fastsig_remember(mlcf, key, not_before, not_after,
                                  e->expires);
}


/* the entry for key, cleared: its own, an empty one, or the oldest */

static ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_slot(u_char *key)
{
    ngx_uint_t                      i;
    ngx_http_mdm_fastsig_entry_t   *e, *victim;

    e = ngx_http_mdm_fastsig_find(key);

    if (e == NULL) {
        e = ngx_http_mdm_fastsig_set(key);
        victim = e;

        for (i = 0; i < NGX_HTTP_MDM_FASTSIG_WAYS; i++) {
            if (e[i].pkey == NULL) {
                victim = &e[i];
                break;
            }

            if (e[i].expires < victim->expires) {
                victim = &e[i];
            }
        }

        e = victim;
    }

    ngx_http_mdm_fastsig_clear(e);

    return e;
}


/* the verdict on a certificate the full path verified */

static void
ngx_http_mdm_fastsig_remember(ngx_http_mdm_loc_conf_t *mlcf, u_char *key,
    time_t not_before, time_t not_after, time_t expires)
{
    ngx_uint_t                       i;
    ngx_http_mdm_fastsig_times_t     t;
    ngx_http_mdm_fastsig_verdict_t  *v, *victim;

    if (mlcf->identity_zone) {
        if (expires == ngx_http_mdm_fastsig_found_expires
            && ngx_memcmp(key, ngx_http_mdm_fastsig_found,
                          SHA256_DIGEST_LENGTH) == 0)
        {
            ngx_http_mdm_fastsig_found_expires = 0;
            return;
        }

        t.not_before = not_before;
        t.not_after = not_after;
        t.expires = expires;

        ngx_http_mdm_fastsig_shm_store(mlcf->identity_zone, key,
                                       mlcf->ca->fingerprint, &t, ngx_time());
        return;
    }

    if (ngx_http_mdm_fastsig_vsets == 0 || mlcf->identity_verdicts == 0) {
        return;
    }

    v = ngx_http_mdm_fastsig_vset(key);
    victim = v;

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_WAYS; i++) {
        if (v[i].ca == NULL
            || ngx_memcmp(v[i].key, key, SHA256_DIGEST_LENGTH) == 0)
        {
            victim = &v[i];
            break;
        }

        if (v[i].expires < victim->expires) {
            victim = &v[i];
        }
    }

    ngx_memcpy(victim->key, key, SHA256_DIGEST_LENGTH);
    victim->ca = mlcf->ca;
    victim->not_before = not_before;
    victim->not_after = not_after;
    victim->expires = expires;
}


/*
 * The verdict on key for mlcf's CA, still good at now: NGX_OK with its
 * validity and recheck time in t; NGX_DECLINED when there is none.
 */

ngx_int_t
ngx_http_mdm_fastsig_verdict(ngx_http_mdm_loc_conf_t *mlcf, u_char *key,
    time_t now, ngx_http_mdm_fastsig_times_t *t)
{
    ngx_uint_t                       i;
    ngx_http_mdm_fastsig_verdict_t  *v;

    if (mlcf->identity_zone) {
        if (ngx_http_mdm_fastsig_shm_find(mlcf->identity_zone, key,
                                          mlcf->ca->fingerprint, now, t)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        ngx_memcpy(ngx_http_mdm_fastsig_found, key, SHA256_DIGEST_LENGTH);
        ngx_http_mdm_fastsig_found_expires = t->expires;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "mdm: certificate verdict found in the shared zone");

        return NGX_OK;
    }

    if (ngx_http_mdm_fastsig_vsets == 0 || mlcf->identity_verdicts == 0) {
        return NGX_DECLINED;
    }

    v = ngx_http_mdm_fastsig_vset(key);

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_WAYS; i++, v++) {
        if (v->ca && ngx_memcmp(v->key, key, SHA256_DIGEST_LENGTH) == 0) {
            break;
        }
    }

    if (i == NGX_HTTP_MDM_FASTSIG_WAYS || v->ca != mlcf->ca
        || now >= v->expires)
    {
        return NGX_DECLINED;
    }

    t->not_before = v->not_before;
    t->not_after = v->not_after;
    t->expires = v->expires;

    return NGX_OK;
}


/*
 * A certificate known good for mlcf's CA (a verdict, or a chain check)
 * gets a key entry, its RSA key rebuilt from its DER, and its verdict is
 * remembered.  Anything unusual (another key type, a non-canonical
 * encoding) is NULL: the full path decides.
 */

ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_admit(ngx_http_mdm_loc_conf_t *mlcf, u_char *key,
    ngx_http_mdm_signed_t *s, ngx_http_mdm_fastsig_times_t *t)
{
    EVP_PKEY                        *pkey;
    ngx_http_mdm_der_t               issuer, serial, n, e;
    ngx_http_mdm_fastsig_entry_t    *entry;

    if (ngx_http_mdm_fastsig_size == 0
        || ngx_http_mdm_fastsig_cert(s, &issuer, &serial, &n, &e) != NGX_OK)
    {
        return NULL;
    }

    pkey = ngx_http_mdm_fastsig_rsa_key(&n, &e);
    if (pkey == NULL) {
        return NULL;
    }

    entry = ngx_http_mdm_fastsig_slot(key);

    if (ngx_http_mdm_fastsig_copy(&entry->issuer, &entry->issuer_len,
                                  issuer.start, issuer.end - issuer.start)
        != NGX_OK
        || ngx_http_mdm_fastsig_copy(&entry->serial, &entry->serial_len,
                                     serial.start, serial.end - serial.start)
           != NGX_OK)
    {
        EVP_PKEY_free(pkey);
        ngx_http_mdm_fastsig_clear(entry);
        return NULL;
    }

    entry->pkey = pkey;
    ngx_memcpy(entry->key, key, SHA256_DIGEST_LENGTH);
    ngx_hex_dump(entry->hex, key, SHA256_DIGEST_LENGTH);
    entry->ca = mlcf->ca;
    entry->not_before = t->not_before;
    entry->not_after = t->not_after;
    entry->expires = t->expires;

    ngx_http_mdm_fastsig_remember(mlcf, key, t->not_before, t->not_after,
                                  t->expires);

    return entry;
}


/* a certificate with a verdict but no key entry gets one again */

ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_promote(ngx_http_mdm_loc_conf_t *mlcf, u_char *key,
    ngx_http_mdm_signed_t *s, time_t now)
{
    ngx_http_mdm_fastsig_times_t   t;
    ngx_http_mdm_fastsig_entry_t  *e;

    if (ngx_http_mdm_fastsig_verdict(mlcf, key, now, &t) != NGX_OK) {
        return NULL;
    }

    e = ngx_http_mdm_fastsig_admit(mlcf, key, s, &t);

    if (e) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "mdm: certificate key rebuilt from a cached verdict");
    }

    return e;
}


static ngx_int_t
ngx_http_mdm_fastsig_copy(u_char **dst, size_t *dst_len, u_char *src,
    size_t len)
{
    *dst = ngx_alloc(len, ngx_cycle->log);
    if (*dst == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(*dst, src, len);
    *dst_len = len;

    return NGX_OK;
}


static EVP_PKEY *
ngx_http_mdm_fastsig_rsa_key(ngx_http_mdm_der_t *n, ngx_http_mdm_der_t *e)
{
    BIGNUM          *bn, *be;
    EVP_PKEY        *pkey;
    OSSL_PARAM      *params;
    EVP_PKEY_CTX    *ctx;
    OSSL_PARAM_BLD  *bld;

    pkey = NULL;
    params = NULL;
    ctx = NULL;

    bn = BN_bin2bn(n->pos, n->end - n->pos, NULL);
    be = BN_bin2bn(e->pos, e->end - e->pos, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (bn == NULL || be == NULL || bld == NULL
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
        || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        ERR_clear_error();
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);

    return pkey;
}


/* the set a key belongs to: a bounded cache that new certs only churn */

static ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_set(u_char *key)
{
    uint64_t  h;

    ngx_memcpy(&h, key, sizeof(h));

    return &ngx_http_mdm_fastsig_cache[(h % ngx_http_mdm_fastsig_sets)
                                       * NGX_HTTP_MDM_FASTSIG_WAYS];
}


/* the same for the verdicts */

static ngx_http_mdm_fastsig_verdict_t *
ngx_http_mdm_fastsig_vset(u_char *key)
{
    uint64_t  h;

    ngx_memcpy(&h, key, sizeof(h));

    return &ngx_http_mdm_fastsig_verdicts[(h % ngx_http_mdm_fastsig_vsets)
                                          * NGX_HTTP_MDM_FASTSIG_WAYS];
}


ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_find(u_char *key)
{
    ngx_uint_t                      i;
    ngx_http_mdm_fastsig_entry_t   *e;

    e = ngx_http_mdm_fastsig_set(key);

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_WAYS; i++) {
        if (e[i].pkey && ngx_memcmp(e[i].key, key, SHA256_DIGEST_LENGTH) == 0)
        {
            return &e[i];
        }
    }

    return NULL;
}


static void
ngx_http_mdm_fastsig_clear(ngx_http_mdm_fastsig_entry_t *e)
{
    EVP_PKEY_CTX_free(e->pctx);
    EVP_PKEY_free(e->pkey);
    ngx_free(e->issuer);
    ngx_free(e->serial);
    ngx_memzero(e, sizeof(ngx_http_mdm_fastsig_entry_t));
}
