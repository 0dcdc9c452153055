
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The Mdm-Signature fast path.  A device signs every request with the same
 * certificate, so once its certificate has passed the full verification
 * (CMS parse, chain, purpose) it is kept, with its public key, in a bounded
 * per-worker cache keyed by the SHA-256 of its DER.  A request whose
 * signature carries a cached certificate then costs a walk of the DER, two
 * digests and one signature verify.
 *
 * Behind it a larger table keeps only verdicts: the SHA-256 of a verified
 * certificate, its CA and validity.  A device whose key object was evicted
 * has its RSA key rebuilt from the certificate it sends (a few µs, where
 * parsing the certificate again through OpenSSL 3's decoders costs more than
 * 100 µs), so a fleet larger than the key cache does not fall back to the
 * full verification.
 *
 * The walk accepts only the plain shape devices send: definite lengths,
 * one certificate, one signer identified by issuer and serial, DER-ordered
 * signed attributes with contentType id-data and a messageDigest, an RSA
 * PKCS#1 v1.5 or ECDSA signature.  Anything else, and every failure, goes
 * to the full path, which gives the verdict and its reason: both paths
 * accept exactly the same requests.
 */


#include "ngx_http_mdm_fastsig.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>


/* how long a cached chain verdict holds before it is checked again */
#define NGX_HTTP_MDM_FASTSIG_TTL   3600

/*
 * Entries per set: a direct-mapped cache would let two devices whose keys
 * share a slot evict each other on every request.
 */
#define NGX_HTTP_MDM_FASTSIG_WAYS  4


typedef struct {
    u_char             key[SHA256_DIGEST_LENGTH];   /* of the cert DER */
    ngx_http_mdm_ca_t *ca;           /* the verdict is for this CA */
    EVP_PKEY          *pkey;
    EVP_PKEY_CTX      *pctx;         /* ready to verify with md */
    const EVP_MD      *md;
    u_char            *issuer;       /* DER of the issuer Name */
    size_t             issuer_len;
    u_char            *serial;       /* DER of the serial INTEGER */
    size_t             serial_len;
    time_t             not_before;
    time_t             not_after;
    time_t             expires;      /* when the chain is checked again */
    u_char             hex[64];
} ngx_http_mdm_fastsig_entry_t;


/* a certificate that passed the full verification, without its key */
typedef struct {
    u_char             key[SHA256_DIGEST_LENGTH];
    ngx_http_mdm_ca_t *ca;
    time_t             not_before;
    time_t             not_after;
    time_t             expires;
} ngx_http_mdm_fastsig_verdict_t;


/* a DER element: tag, then the bounds of its content */
typedef struct {
    u_int              tag;
    u_char            *start;        /* the tag byte */
    u_char            *pos;          /* the content */
    u_char            *end;
} ngx_http_mdm_der_t;


typedef struct {
    u_char            *cert;         /* the certificate's whole DER */
    size_t             cert_len;
    u_char            *issuer;
    size_t             issuer_len;
    u_char            *serial;
    size_t             serial_len;
    const EVP_MD      *md;
    u_char            *attrs;        /* signedAttrs, tag included */
    size_t             attrs_len;
    u_char            *digest;       /* the messageDigest value */
    size_t             digest_len;
    u_char            *signing_time; /* UTCTime or GeneralizedTime */
    ngx_http_mdm_der_t digest_algs;  /* the SignedData's SET */
    int                sig_nid;
    u_char            *sig;
    size_t             sig_len;
} ngx_http_mdm_signed_t;


static ngx_int_t ngx_http_mdm_der(u_char **p, u_char *end,
    ngx_http_mdm_der_t *e);
static ngx_int_t ngx_http_mdm_der_expect(u_char **p, u_char *end, u_int tag,
    ngx_http_mdm_der_t *e);
static ngx_int_t ngx_http_mdm_fastsig_walk(ngx_str_t *der,
    ngx_http_mdm_signed_t *s);
static ngx_int_t ngx_http_mdm_fastsig_signer(u_char *p, u_char *end,
    ngx_http_mdm_signed_t *s);
static ngx_int_t ngx_http_mdm_fastsig_attrs(u_char *p, u_char *end,
    ngx_http_mdm_signed_t *s);
static ngx_int_t ngx_http_mdm_fastsig_alg(ngx_http_mdm_der_t *alg,
    ngx_http_mdm_der_t *oid);
static ngx_int_t ngx_http_mdm_oid_is(ngx_http_mdm_der_t *e, int nid);
static int ngx_http_mdm_oid_nid(ngx_http_mdm_der_t *e);
static time_t ngx_http_mdm_der_time(u_char *p, u_char *end);
static ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_set(u_char *key);
static ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_find(u_char *key);
static ngx_http_mdm_fastsig_verdict_t *ngx_http_mdm_fastsig_vset(u_char *key);
static ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_slot(u_char *key);
static ngx_int_t ngx_http_mdm_fastsig_copy(u_char **dst, size_t *dst_len,
    u_char *src, size_t len);
static ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_promote(
    ngx_http_mdm_loc_conf_t *mlcf, u_char *key, ngx_http_mdm_signed_t *s,
    time_t now);
static ngx_int_t ngx_http_mdm_fastsig_cert(ngx_http_mdm_signed_t *s,
    ngx_http_mdm_der_t *issuer, ngx_http_mdm_der_t *serial,
    ngx_http_mdm_der_t *n, ngx_http_mdm_der_t *e);
static EVP_PKEY *ngx_http_mdm_fastsig_rsa_key(ngx_http_mdm_der_t *n,
    ngx_http_mdm_der_t *e);
static void ngx_http_mdm_fastsig_remember(ngx_http_mdm_loc_conf_t *mlcf,
    u_char *key, time_t not_before, time_t not_after, time_t expires);
static ngx_int_t ngx_http_mdm_fastsig_alloc(ngx_cycle_t *cycle,
    ngx_uint_t size, ngx_uint_t verdicts);
static ngx_int_t ngx_http_mdm_fastsig_ready(ngx_http_mdm_fastsig_entry_t *e,
    const EVP_MD *md);
static void ngx_http_mdm_fastsig_clear(ngx_http_mdm_fastsig_entry_t *e);
static ngx_int_t ngx_http_mdm_fastsig_sig_fits(EVP_PKEY *pkey, int sig_nid);


static ngx_http_mdm_fastsig_entry_t  *ngx_http_mdm_fastsig_cache;
static ngx_uint_t                     ngx_http_mdm_fastsig_size;
static ngx_uint_t                     ngx_http_mdm_fastsig_sets;

static ngx_http_mdm_fastsig_verdict_t *ngx_http_mdm_fastsig_verdicts;
static ngx_uint_t                      ngx_http_mdm_fastsig_vsets;

/*
 * OpenSSL 3 looks algorithms up by name and builds contexts on every
 * one-shot call, which costs as much as the RSA verify itself: the digests
 * are fetched once, one digest context is reused, and each cached key keeps
 * a context ready to verify.
 */
static EVP_MD                        *ngx_http_mdm_fastsig_md[4];
static EVP_MD_CTX                    *ngx_http_mdm_fastsig_mdctx;

/*
 * The OIDs the walk knows, as DER content bytes taken from OpenSSL's own
 * table once: looking each one up per request cost more than the walk.
 */
#define NGX_HTTP_MDM_FASTSIG_OIDS  18

static const int  ngx_http_mdm_fastsig_nids[NGX_HTTP_MDM_FASTSIG_OIDS] = {
    NID_pkcs7_signed, NID_pkcs7_data,
    NID_pkcs9_contentType, NID_pkcs9_messageDigest, NID_pkcs9_signingTime,
    NID_sha256, NID_sha384, NID_sha512, NID_sha1,
    NID_rsaEncryption, NID_sha256WithRSAEncryption,
    NID_sha384WithRSAEncryption, NID_sha512WithRSAEncryption,
    NID_sha1WithRSAEncryption, NID_ecdsa_with_SHA256,
    NID_ecdsa_with_SHA384, NID_ecdsa_with_SHA512, NID_ecdsa_with_SHA1
};

static struct {
    int                               nid;
    const u_char                     *data;
    size_t                            len;
} ngx_http_mdm_fastsig_oid[NGX_HTTP_MDM_FASTSIG_OIDS];


ngx_int_t
ngx_http_mdm_fastsig_init(ngx_cycle_t *cycle, ngx_uint_t size,
    ngx_uint_t verdicts)
{
    if (size == 0) {
        return NGX_OK;
    }

    return ngx_http_mdm_fastsig_alloc(cycle, size, verdicts);
}


static ngx_int_t
ngx_http_mdm_fastsig_alloc(ngx_cycle_t *cycle, ngx_uint_t size,
    ngx_uint_t verdicts)
{
    ngx_uint_t           i;
    const ASN1_OBJECT   *obj;

    static const char  *names[] = { "SHA256", "SHA384", "SHA512", "SHA1" };

    for (i = 0; i < 4; i++) {
        ngx_http_mdm_fastsig_md[i] = EVP_MD_fetch(NULL, names[i], NULL);
    }

    ngx_http_mdm_fastsig_mdctx = EVP_MD_CTX_new();

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_OIDS; i++) {
        obj = OBJ_nid2obj(ngx_http_mdm_fastsig_nids[i]);
        if (obj == NULL) {
            return NGX_ERROR;
        }

        ngx_http_mdm_fastsig_oid[i].nid = ngx_http_mdm_fastsig_nids[i];
        ngx_http_mdm_fastsig_oid[i].data = OBJ_get0_data(obj);
        ngx_http_mdm_fastsig_oid[i].len = OBJ_length(obj);
    }

    ngx_http_mdm_fastsig_sets = (size + NGX_HTTP_MDM_FASTSIG_WAYS - 1)
                                / NGX_HTTP_MDM_FASTSIG_WAYS;
    size = ngx_http_mdm_fastsig_sets * NGX_HTTP_MDM_FASTSIG_WAYS;

    if (size > NGX_MAX_SIZE_T_VALUE / sizeof(ngx_http_mdm_fastsig_entry_t)) {
        return NGX_ERROR;
    }

    ngx_http_mdm_fastsig_cache = ngx_calloc(
                               size * sizeof(ngx_http_mdm_fastsig_entry_t),
                               cycle->log);
    if (ngx_http_mdm_fastsig_cache == NULL
        || ngx_http_mdm_fastsig_mdctx == NULL
        || ngx_http_mdm_fastsig_md[0] == NULL)
    {
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
ngx_http_mdm_fastsig_exit(void)
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
    ngx_http_mdm_signed_t           s;
    ngx_http_mdm_fastsig_entry_t   *e;

    if (ngx_http_mdm_fastsig_size == 0 || !mlcf->identity_cache) {
        return NGX_DECLINED;
    }

    ngx_memzero(&s, sizeof(ngx_http_mdm_signed_t));

    if (ngx_http_mdm_fastsig_walk(der, &s) != NGX_OK) {
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

    if (e == NULL || e->ca != mlcf->ca || now >= e->expires) {
        e = ngx_http_mdm_fastsig_promote(mlcf, key, &s, now);
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
    if (EVP_DigestInit_ex2(ctx, s.md, NULL) != 1
        || EVP_DigestUpdate(ctx, body->data, body->len) != 1
        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1
        || mdlen != s.digest_len
        || ngx_memcmp(md, s.digest, mdlen) != 0)
    {
        return NGX_DECLINED;
    }

    /* the signature is over the attributes encoded as a SET (0x31) */
    if (EVP_DigestInit_ex2(ctx, s.md, NULL) != 1
        || EVP_DigestUpdate(ctx, "\x31", 1) != 1
        || EVP_DigestUpdate(ctx, s.attrs + 1, s.attrs_len - 1) != 1
        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1
        || ngx_http_mdm_fastsig_ready(e, s.md) != NGX_OK
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
    ngx_http_mdm_fastsig_verdict_t  *v, *victim;

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
 * A certificate with a verdict but no key entry: its RSA key is rebuilt
 * from its DER, and it gets a key entry again.  Anything unusual (another
 * key type, a non-canonical encoding) is NULL: the full path decides.
 */

static ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_promote(ngx_http_mdm_loc_conf_t *mlcf, u_char *key,
    ngx_http_mdm_signed_t *s, time_t now)
{
    EVP_PKEY                        *pkey;
    ngx_uint_t                       i;
    ngx_http_mdm_der_t               issuer, serial, n, e;
    ngx_http_mdm_fastsig_entry_t    *entry;
    ngx_http_mdm_fastsig_verdict_t  *v;

    if (ngx_http_mdm_fastsig_vsets == 0 || mlcf->identity_verdicts == 0) {
        return NULL;
    }

    v = ngx_http_mdm_fastsig_vset(key);

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_WAYS; i++, v++) {
        if (v->ca && ngx_memcmp(v->key, key, SHA256_DIGEST_LENGTH) == 0) {
            break;
        }
    }

    if (i == NGX_HTTP_MDM_FASTSIG_WAYS || v->ca != mlcf->ca
        || now >= v->expires
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
    entry->ca = v->ca;
    entry->not_before = v->not_before;
    entry->not_after = v->not_after;
    entry->expires = v->expires;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "mdm: certificate key rebuilt from a cached verdict");

    return entry;
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


/*
 * The signer certificate's issuer and serial number, and its RSA modulus
 * and exponent, from its DER: Certificate { TBSCertificate { [0] version,
 * serial, signature, issuer, validity, subject, subjectPublicKeyInfo ...
 */

static ngx_int_t
ngx_http_mdm_fastsig_cert(ngx_http_mdm_signed_t *s, ngx_http_mdm_der_t *issuer,
    ngx_http_mdm_der_t *serial, ngx_http_mdm_der_t *n, ngx_http_mdm_der_t *e)
{
    u_char              *p, *q;
    ngx_http_mdm_der_t   cert, tbs, x, spki, alg, oid, bits, rsa;

    p = s->cert;

    if (ngx_http_mdm_der_expect(&p, s->cert + s->cert_len, 0x30, &cert)
        != NGX_OK
        || (p = cert.pos,
            ngx_http_mdm_der_expect(&p, cert.end, 0x30, &tbs)) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    p = tbs.pos;

    /* version 3, the only one with the extensions a device cert needs */
    if (ngx_http_mdm_der_expect(&p, tbs.end, 0xa0, &x) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x02, serial) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, issuer) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &spki) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* { { rsaEncryption, NULL }, BIT STRING { 0 unused, { n, e } } } */
    p = spki.pos;
    if (ngx_http_mdm_der_expect(&p, spki.end, 0x30, &alg) != NGX_OK
        || ngx_http_mdm_fastsig_alg(&alg, &oid) != NGX_OK
        || alg.end - oid.end != 2
        || ngx_http_mdm_oid_nid(&oid) != NID_rsaEncryption
        || ngx_http_mdm_der_expect(&p, spki.end, 0x03, &bits) != NGX_OK
        || p != spki.end
        || bits.end - bits.pos < 1 || bits.pos[0] != 0)
    {
        return NGX_DECLINED;
    }

    q = bits.pos + 1;
    if (ngx_http_mdm_der_expect(&q, bits.end, 0x30, &rsa) != NGX_OK
        || q != bits.end
        || (q = rsa.pos,
            ngx_http_mdm_der_expect(&q, rsa.end, 0x02, n)) != NGX_OK
        || ngx_http_mdm_der_expect(&q, rsa.end, 0x02, e) != NGX_OK
        || q != rsa.end)
    {
        return NGX_DECLINED;
    }

    /* positive, minimally encoded integers only */
    if (n->end == n->pos || e->end == e->pos
        || (n->pos[0] & 0x80) || (e->pos[0] & 0x80)
        || (n->end - n->pos > 1 && n->pos[0] == 0 && !(n->pos[1] & 0x80))
        || (e->end - e->pos > 1 && e->pos[0] == 0 && !(e->pos[1] & 0x80)))
    {
        return NGX_DECLINED;
    }

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


static ngx_http_mdm_fastsig_entry_t *
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


/* the DER walk */

static ngx_int_t
ngx_http_mdm_fastsig_walk(ngx_str_t *der, ngx_http_mdm_signed_t *s)
{
    u_char              *p, *end;
    ngx_uint_t           n;
    ngx_http_mdm_der_t   ci, oid, x, sd, e, certs, cert, sis, si;

    p = der->data;
    end = der->data + der->len;

    if (ngx_http_mdm_der_expect(&p, end, 0x30, &ci) != NGX_OK
        || ci.end != end)
    {
        return NGX_DECLINED;
    }

    p = ci.pos;

    if (ngx_http_mdm_der_expect(&p, ci.end, 0x06, &oid) != NGX_OK
        || ngx_http_mdm_oid_is(&oid, NID_pkcs7_signed) != NGX_OK
        || ngx_http_mdm_der_expect(&p, ci.end, 0xa0, &x) != NGX_OK
        || (p = x.pos,
            ngx_http_mdm_der_expect(&p, x.end, 0x30, &sd)) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    p = sd.pos;

    /* version 1, digestAlgorithms (checked against the signer's) */
    if (ngx_http_mdm_der_expect(&p, sd.end, 0x02, &e) != NGX_OK
        || e.end - e.pos != 1 || e.pos[0] != 1
        || ngx_http_mdm_der_expect(&p, sd.end, 0x31, &s->digest_algs)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* encapContentInfo: id-data, detached (no eContent) */
    if (ngx_http_mdm_der_expect(&p, sd.end, 0x30, &e) != NGX_OK) {
        return NGX_DECLINED;
    }

    x.pos = e.pos;
    if (ngx_http_mdm_der_expect(&x.pos, e.end, 0x06, &oid) != NGX_OK
        || ngx_http_mdm_oid_is(&oid, NID_pkcs7_data) != NGX_OK
        || x.pos != e.end)
    {
        return NGX_DECLINED;
    }

    /* certificates [0]: exactly one; no crls [1] */
    if (ngx_http_mdm_der_expect(&p, sd.end, 0xa0, &certs) != NGX_OK) {
        return NGX_DECLINED;
    }

    x.pos = certs.pos;
    if (ngx_http_mdm_der_expect(&x.pos, certs.end, 0x30, &cert) != NGX_OK
        || x.pos != certs.end)
    {
        return NGX_DECLINED;
    }

    s->cert = cert.start;
    s->cert_len = cert.end - cert.start;

    /* signerInfos: exactly one */
    if (ngx_http_mdm_der_expect(&p, sd.end, 0x31, &sis) != NGX_OK
        || p != sd.end)
    {
        return NGX_DECLINED;
    }

    n = 0;
    x.pos = sis.pos;

    while (x.pos < sis.end) {
        if (ngx_http_mdm_der_expect(&x.pos, sis.end, 0x30, &si) != NGX_OK) {
            return NGX_DECLINED;
        }
        n++;
    }

    if (n != 1) {
        return NGX_DECLINED;
    }

    return ngx_http_mdm_fastsig_signer(si.pos, si.end, s);
}


static ngx_int_t
ngx_http_mdm_fastsig_signer(u_char *p, u_char *end, ngx_http_mdm_signed_t *s)
{
    u_char              *q;
    ngx_http_mdm_der_t   v, sid, name, serial, alg, oid, attrs, sig;

    /* version 1: the signer is named by issuer and serial number */
    if (ngx_http_mdm_der_expect(&p, end, 0x02, &v) != NGX_OK
        || v.end - v.pos != 1 || v.pos[0] != 1
        || ngx_http_mdm_der_expect(&p, end, 0x30, &sid) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    q = sid.pos;
    if (ngx_http_mdm_der_expect(&q, sid.end, 0x30, &name) != NGX_OK
        || ngx_http_mdm_der_expect(&q, sid.end, 0x02, &serial) != NGX_OK
        || q != sid.end)
    {
        return NGX_DECLINED;
    }

    s->issuer = name.start;
    s->issuer_len = name.end - name.start;
    s->serial = serial.start;
    s->serial_len = serial.end - serial.start;

    /*
     * digestAlgorithm: the one digestAlgorithms names, byte for byte,
     * without parameters or with NULL ones
     */
    if (ngx_http_mdm_der_expect(&p, end, 0x30, &alg) != NGX_OK
        || ngx_http_mdm_fastsig_alg(&alg, &oid) != NGX_OK
        || (size_t) (s->digest_algs.end - s->digest_algs.pos)
           != (size_t) (alg.end - alg.start)
        || ngx_memcmp(s->digest_algs.pos, alg.start, alg.end - alg.start)
           != 0)
    {
        return NGX_DECLINED;
    }

    switch (ngx_http_mdm_oid_nid(&oid)) {
    case NID_sha256:
        s->md = ngx_http_mdm_fastsig_md[0];
        break;
    case NID_sha384:
        s->md = ngx_http_mdm_fastsig_md[1];
        break;
    case NID_sha512:
        s->md = ngx_http_mdm_fastsig_md[2];
        break;
    case NID_sha1:
        s->md = ngx_http_mdm_fastsig_md[3];
        break;
    default:
        return NGX_DECLINED;
    }

    if (s->md == NULL) {
        return NGX_DECLINED;
    }

    /* signedAttrs [0] IMPLICIT */
    if (ngx_http_mdm_der_expect(&p, end, 0xa0, &attrs) != NGX_OK) {
        return NGX_DECLINED;
    }

    s->attrs = attrs.start;
    s->attrs_len = attrs.end - attrs.start;

    if (ngx_http_mdm_fastsig_attrs(attrs.pos, attrs.end, s) != NGX_OK) {
        return NGX_DECLINED;
    }

    /* signatureAlgorithm */
    if (ngx_http_mdm_der_expect(&p, end, 0x30, &alg) != NGX_OK
        || ngx_http_mdm_fastsig_alg(&alg, &oid) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    s->sig_nid = ngx_http_mdm_oid_nid(&oid);

    switch (s->sig_nid) {
    case NID_rsaEncryption:
    case NID_sha1WithRSAEncryption:
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
    case NID_ecdsa_with_SHA1:
    case NID_ecdsa_with_SHA256:
    case NID_ecdsa_with_SHA384:
    case NID_ecdsa_with_SHA512:
        break;
    default:
        return NGX_DECLINED;
    }

    /* signature; no unsignedAttrs */
    if (ngx_http_mdm_der_expect(&p, end, 0x04, &sig) != NGX_OK
        || p != end)
    {
        return NGX_DECLINED;
    }

    s->sig = sig.pos;
    s->sig_len = sig.end - sig.pos;

    return NGX_OK;
}


/*
 * contentType (id-data) and messageDigest exactly once, signingTime at
 * most once, in DER order: the full path re-encodes the attributes in DER
 * before verifying, so a signature over another order must fail there.
 */

static ngx_int_t
ngx_http_mdm_fastsig_attrs(u_char *p, u_char *end, ngx_http_mdm_signed_t *s)
{
    u_char              *q, *prev;
    size_t               prev_len, len;
    ngx_uint_t           content_type;
    ngx_http_mdm_der_t   a, oid, set, v;

    content_type = 0;
    prev = NULL;
    prev_len = 0;

    while (p < end) {
        if (ngx_http_mdm_der_expect(&p, end, 0x30, &a) != NGX_OK) {
            return NGX_DECLINED;
        }

        len = a.end - a.start;

        if (prev && (ngx_memcmp(prev, a.start, ngx_min(prev_len, len)) > 0
                     || (ngx_memcmp(prev, a.start, ngx_min(prev_len, len))
                         == 0 && prev_len > len)))
        {
            return NGX_DECLINED;
        }

        prev = a.start;
        prev_len = len;

        q = a.pos;
        if (ngx_http_mdm_der_expect(&q, a.end, 0x06, &oid) != NGX_OK
            || ngx_http_mdm_der_expect(&q, a.end, 0x31, &set) != NGX_OK
            || q != a.end)
        {
            return NGX_DECLINED;
        }

        q = set.pos;
        if (ngx_http_mdm_der(&q, set.end, &v) != NGX_OK || q != set.end) {
            /* none, or several values */
            return NGX_DECLINED;
        }

        switch (ngx_http_mdm_oid_nid(&oid)) {

        case NID_pkcs9_contentType:
            if (content_type || v.tag != 0x06
                || ngx_http_mdm_oid_is(&v, NID_pkcs7_data) != NGX_OK)
            {
                return NGX_DECLINED;
            }
            content_type = 1;
            break;

        case NID_pkcs9_messageDigest:
            if (s->digest || v.tag != 0x04) {
                return NGX_DECLINED;
            }
            s->digest = v.pos;
            s->digest_len = v.end - v.pos;
            break;

        case NID_pkcs9_signingTime:
            if (s->signing_time || (v.tag != 0x17 && v.tag != 0x18)) {
                return NGX_DECLINED;
            }
            s->signing_time = v.start;
            break;

        default:
            /* smimeCapabilities and the like: signed, not interpreted */
            break;
        }
    }

    return (content_type && s->digest) ? NGX_OK : NGX_DECLINED;
}


/* AlgorithmIdentifier { OID, NULL or nothing }, and nothing else */

static ngx_int_t
ngx_http_mdm_fastsig_alg(ngx_http_mdm_der_t *alg, ngx_http_mdm_der_t *oid)
{
    u_char  *q = alg->pos;

    if (ngx_http_mdm_der_expect(&q, alg->end, 0x06, oid) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (q == alg->end) {
        return NGX_OK;
    }

    return (alg->end - q == 2 && q[0] == 0x05 && q[1] == 0x00)
           ? NGX_OK : NGX_DECLINED;
}


/* one element with a definite length inside [*p, end) */

static ngx_int_t
ngx_http_mdm_der(u_char **p, u_char *end, ngx_http_mdm_der_t *e)
{
    size_t      len;
    u_char     *q = *p;
    ngx_uint_t  n;

    if (end - q < 2) {
        return NGX_DECLINED;
    }

    e->start = q;
    e->tag = *q++;

    if ((e->tag & 0x1f) == 0x1f) {
        /* multi-byte tags do not occur here */
        return NGX_DECLINED;
    }

    len = *q++;

    if (len & 0x80) {
        n = len & 0x7f;

        /*
         * 0x80 is BER's indefinite length, and DER has no leading zero
         * octets nor long forms for short lengths: the full path handles
         * them (it re-encodes what it verifies)
         */
        if (n == 0 || n > 4 || (size_t) (end - q) < n || q[0] == 0) {
            return NGX_DECLINED;
        }

        for (len = 0; n; n--) {
            len = (len << 8) | *q++;
        }

        if (len < 0x80) {
            return NGX_DECLINED;
        }
    }

    if ((size_t) (end - q) < len) {
        return NGX_DECLINED;
    }

    e->pos = q;
    e->end = q + len;
    *p = e->end;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_der_expect(u_char **p, u_char *end, u_int tag,
    ngx_http_mdm_der_t *e)
{
    if (ngx_http_mdm_der(p, end, e) != NGX_OK || e->tag != tag) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* which of the OIDs the walk knows e is */

static int
ngx_http_mdm_oid_nid(ngx_http_mdm_der_t *e)
{
    size_t       len;
    ngx_uint_t   i;

    len = e->end - e->pos;

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_OIDS; i++) {
        if (ngx_http_mdm_fastsig_oid[i].len == len
            && ngx_memcmp(ngx_http_mdm_fastsig_oid[i].data, e->pos, len) == 0)
        {
            return ngx_http_mdm_fastsig_oid[i].nid;
        }
    }

    return NID_undef;
}


static ngx_int_t
ngx_http_mdm_oid_is(ngx_http_mdm_der_t *e, int nid)
{
    return (ngx_http_mdm_oid_nid(e) == nid) ? NGX_OK : NGX_DECLINED;
}


/*
 * signingTime in the two forms DER allows (RFC 5280 4.1.2.5):
 * UTCTime YYMMDDHHMMSSZ and GeneralizedTime YYYYMMDDHHMMSSZ.  Anything
 * else is -1 and goes to the full path; what is accepted here gets the
 * value ASN1_TIME_to_tm() and timegm() give it there, without their
 * allocations.
 */

static time_t
ngx_http_mdm_der_time(u_char *p, u_char *end)
{
    u_char      *d;
    ngx_int_t    v[6], year, m, days;
    ngx_uint_t   i, n;

    static const ngx_int_t  max[] = { 9999, 12, 31, 23, 59, 59 };
    static const ngx_int_t  mdays[] = { 31, 28, 31, 30, 31, 30,
                                        31, 31, 30, 31, 30, 31 };

    if (end - p < 2) {
        return (time_t) -1;
    }

    n = (p[0] == 0x17) ? 13 : 15;

    if ((p[0] != 0x17 && p[0] != 0x18) || p[1] != n
        || (size_t) (end - p) < n + 2 || p[n + 1] != 'Z')
    {
        return (time_t) -1;
    }

    d = p + 2;

    for (i = 0; i < n - 1; i++) {
        if (d[i] < '0' || d[i] > '9') {
            return (time_t) -1;
        }
    }

    if (n == 13) {
        v[0] = (d[0] - '0') * 10 + (d[1] - '0');
        v[0] += (v[0] < 50) ? 2000 : 1900;
        d += 2;

    } else {
        v[0] = (d[0] - '0') * 1000 + (d[1] - '0') * 100
               + (d[2] - '0') * 10 + (d[3] - '0');
        d += 4;

        /* before UTCTime's range: no device clock says that */
        if (v[0] < 1950) {
            return (time_t) -1;
        }
    }

    for (i = 1; i < 6; i++, d += 2) {
        v[i] = (d[0] - '0') * 10 + (d[1] - '0');

        if (v[i] > max[i] || (i <= 2 && v[i] == 0)) {
            return (time_t) -1;
        }
    }

    year = v[0];
    m = v[1];

    if (v[2] > mdays[m - 1] + (m == 2 && year % 4 == 0
                               && (year % 100 != 0 || year % 400 == 0)))
    {
        return (time_t) -1;
    }

    /* days since 1970-01-01 of a proleptic Gregorian date */
    if (m <= 2) {
        year--;
        m += 12;
    }

    days = 365 * year + year / 4 - year / 100 + year / 400
           + (153 * (m - 3) + 2) / 5 + v[2] - 719469;

    return (time_t) days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
}
