
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "fastsig": the Mdm-Signature fast path and the first sight of a
 * certificate, differentially against OpenSSL's full verification.
 *
 * Input: 2 bytes big-endian body length, the body, then the DER of a
 * detached CMS SignedData (the decoded Mdm-Signature).
 *
 * The module first asks ngx_http_mdm_fastsig_verify() (the DER walk of
 * ngx_http_mdm_fastsig_cms.c, the per-worker certificate cache, two digests
 * and one signature verify); NGX_DECLINED sends the request to the full
 * path (ngx_http_mdm_identity.c).  So "declined" is consistent with any
 * verdict, but an NGX_OK must be a signature OpenSSL's CMS_verify() accepts
 * over the same body, whose signer X509_verify_cert() accepts with the
 * same CA for the SSL client purpose (as ngx_http_mdm_identity.c asks),
 * by exactly the certificate whose SHA-256 the fast path reports, with
 * the shape the full path demands (SignedData, detached, exactly one
 * signer).  Anything else aborts: a differential mismatch.
 *
 * As in a worker that has served both devices before, the cache holds the
 * RSA and the EC device certificate of fuzz/pki after a full verification
 * (ngx_http_mdm_fastsig_store, as ngx_http_mdm_identity.c calls it), with
 * one key entry for two certificates: each request of the other device
 * rebuilds its key from the DER (the cert walk, ngx_http_mdm_fastsig_cert).
 *
 * The first sight (ngx_http_mdm_fastsig_chain.c) is checked with the cache
 * empty for the certificate: a second location ("cold", its own CA
 * struct, no verdicts) calls ngx_http_mdm_fastsig_first_sight() on every
 * input's certificate; when it admits one, OpenSSL must read the same
 * certificate, with the same validity, and X509_verify_cert() must accept
 * it as ngx_http_mdm_identity.c asks (SSL client purpose, at the time the
 * skew rule gives); the request is then verified through that location
 * as the module does, under the same differential as above.
 *
 * The cert walk itself is compared with OpenSSL's parse on whatever
 * certificate the input carries: when both read it, the issuer, the serial
 * number and the RSA modulus and exponent must be the same.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_fastsig.h"
#include "ngx_http_mdm_fastsig_der.h"
#include "ngx_http_mdm_fastsig_chain.h"

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>


static ngx_http_mdm_loc_conf_t  mlcf, cold;
static ngx_http_mdm_ca_t        ca, ca_cold;
static uint64_t                 fast_ok, ref_ok, runs, first_ok, cold_ok;


static void
fuzz_report(void)
{
    fprintf(stderr, "fastsig: %llu inputs, fast path accepted %llu, "
            "OpenSSL accepted %llu; first sight admitted %llu, and the "
            "request with it %llu\n", (unsigned long long) runs,
            (unsigned long long) fast_ok, (unsigned long long) ref_ok,
            (unsigned long long) first_ok, (unsigned long long) cold_ok);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int              i;
    X509            *dev;
    u_char           md[32];
    unsigned int     n;
    X509_STORE_CTX  *xctx;
    const char      *names[] = { "rsa.pem", "ec.pem" };

    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);

    fuzz_ca_init(&ca);

    mlcf.ca = &ca;
    mlcf.identity_cache = 1;
    mlcf.identity_verdicts = 16;

    fuzz_check(ngx_http_mdm_fastsig_init((ngx_cycle_t *) ngx_cycle, 1, 16)
               == NGX_OK);

    /* the same CA for a location that has never seen a certificate */
    fuzz_conf_defaults(&cold);
    fuzz_ca_init(&ca_cold);
    cold.ca = &ca_cold;
    cold.identity_cache = 1;
    cold.identity_verdicts = 0;

    for (i = 0; i < 2; i++) {
        dev = fuzz_pki_cert(names[i]);

        /* what the full path checked before it stored the certificate */
        xctx = X509_STORE_CTX_new();
        fuzz_check(X509_STORE_CTX_init(xctx, ca.store, dev, NULL) == 1);
        X509_STORE_CTX_set_purpose(xctx, X509_PURPOSE_SSL_CLIENT);
        fuzz_check(X509_verify_cert(xctx) == 1);
        X509_STORE_CTX_free(xctx);

        fuzz_check(X509_digest(dev, EVP_sha256(), md, &n) == 1);
        ngx_http_mdm_fastsig_store(&mlcf, dev, md,
                                   fuzz_asn1_time(X509_get0_notBefore(dev)),
                                   fuzz_asn1_time(X509_get0_notAfter(dev)));
        X509_free(dev);
    }

    atexit(fuzz_report);

    return 0;
}


/*
 * X509_verify_cert() as ngx_http_mdm_identity_check() calls it: the CA,
 * the certificates the signature carries, the SSL client purpose, at the
 * certificate's notBefore when that is within the skew ahead
 */

static int
fuzz_chain(X509 *x, CMS_ContentInfo *cms)
{
    int               ok;
    time_t            now, nb, at;
    struct tm         tm;
    X509_STORE_CTX   *xctx;
    STACK_OF(X509)   *certs;

    /* 0 for a time OpenSSL cannot read, as ngx_http_mdm_identity_time() */
    nb = (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1) ? timegm(&tm)
                                                              : 0;
    ERR_clear_error();

    now = ngx_time();
    at = (now < nb && nb - now <= mlcf.skew) ? nb : now;

    certs = CMS_get1_certs(cms);
    xctx = X509_STORE_CTX_new();
    fuzz_check(xctx != NULL
               && X509_STORE_CTX_init(xctx, ca.store, x, certs) == 1);
    X509_STORE_CTX_set_purpose(xctx, X509_PURPOSE_SSL_CLIENT);
    X509_STORE_CTX_set_time(xctx, 0, at);

    ok = X509_verify_cert(xctx) == 1;

    X509_STORE_CTX_free(xctx);
    sk_X509_pop_free(certs, X509_free);

    return ok;
}


/* the full path's verdict, and the signer's SHA-256 (hex) when it accepts */

static int
fuzz_openssl(ngx_str_t *der, ngx_str_t *body, u_char *hex, int *shape)
{
    int                        ok;
    BIO                       *content, *mem;
    X509                      *signer;
    u_char                     md[32];
    unsigned int               n;
    const u_char              *q;
    CMS_ContentInfo           *cms;
    STACK_OF(X509)            *signers;
    STACK_OF(CMS_SignerInfo)  *sis;

    *shape = 0;

    q = der->data;
    cms = d2i_CMS_ContentInfo(NULL, &q, (long) der->len);
    if (cms == NULL) {
        return 0;
    }

    sis = CMS_get0_SignerInfos(cms);

    *shape = OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed
             && CMS_is_detached(cms)
             && sis != NULL && sk_CMS_SignerInfo_num(sis) == 1;

    /* behind a null filter, as the module does (OpenSSL 3.0 leaks a copy
     * of a memory BIO when the digest cannot be set up) */
    content = BIO_new(BIO_f_null());
    mem = BIO_new_mem_buf(body->data, (int) body->len);
    fuzz_check(content && mem);
    BIO_push(content, mem);

    /*
     * as the full path checks it: the signature, then the signer's chain
     * for the SSL client purpose (ngx_http_mdm_identity.c; CMS_verify()'s
     * own chain check asks for the S/MIME signing purpose instead)
     */
    ok = CMS_verify(cms, NULL, NULL, content, NULL,
                    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY | CMS_NOCRL) == 1;

    BIO_free_all(content);

    if (ok) {
        signers = CMS_get0_signers(cms);
        fuzz_check(signers != NULL && sk_X509_num(signers) >= 1);
        signer = sk_X509_value(signers, 0);

        ok = fuzz_chain(signer, cms);

        fuzz_check(X509_digest(signer, EVP_sha256(), md, &n) == 1);
        ngx_hex_dump(hex, md, n);
        sk_X509_free(signers);
    }

    CMS_ContentInfo_free(cms);

    return ok;
}


/* the cert walk against OpenSSL's reading of the same certificate */

static void
fuzz_cert_walk(ngx_str_t *der)
{
    int                     len;
    X509                   *x;
    BIGNUM                 *bn, *walk;
    EVP_PKEY               *pkey;
    const u_char           *q;
    u_char                 *enc, *p;
    ngx_http_mdm_signed_t   s;
    ngx_http_mdm_der_t      issuer, serial, n, e;

    ngx_memzero(&s, sizeof(ngx_http_mdm_signed_t));

    if (ngx_http_mdm_fastsig_walk(der, &s) != NGX_OK
        || ngx_http_mdm_fastsig_cert(&s, &issuer, &serial, &n, &e) != NGX_OK)
    {
        return;
    }

    fuzz_check(issuer.start >= s.cert && issuer.end <= s.cert + s.cert_len);
    fuzz_check(n.pos < n.end && e.pos < e.end);

    q = s.cert;
    x = d2i_X509(NULL, &q, (long) s.cert_len);
    if (x == NULL) {
        ERR_clear_error();
        return;
    }

    /* the issuer Name, as it was encoded */
    enc = NULL;
    len = i2d_X509_NAME(X509_get_issuer_name(x), &enc);
    fuzz_check(len > 0);
    fuzz_check((size_t) len == (size_t) (issuer.end - issuer.start)
               && memcmp(enc, issuer.start, len) == 0);
    OPENSSL_free(enc);

    /* the serial number: OpenSSL keeps the value, the walk the DER */
    enc = NULL;
    len = i2d_ASN1_INTEGER((ASN1_INTEGER *) X509_get0_serialNumber(x), &enc);
    fuzz_check(len > 0);
    if ((size_t) len != (size_t) (serial.end - serial.start)
        || memcmp(enc, serial.start, len) != 0)
    {
        /* only a non-minimal INTEGER may read differently */
        p = serial.pos;
        fuzz_check(serial.end - serial.pos > 1
                   && ((p[0] == 0 && !(p[1] & 0x80))
                       || (p[0] == 0xff && (p[1] & 0x80))));
    }
    OPENSSL_free(enc);

    /* the RSA key the cache would rebuild */
    pkey = X509_get0_pubkey(x);
    if (pkey != NULL && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        bn = NULL;
        walk = BN_bin2bn(n.pos, (int) (n.end - n.pos), NULL);
        fuzz_check(walk != NULL);
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &bn) == 1) {
            fuzz_check(BN_cmp(bn, walk) == 0);
        }
        BN_free(bn);
        BN_free(walk);

        bn = NULL;
        walk = BN_bin2bn(e.pos, (int) (e.end - e.pos), NULL);
        fuzz_check(walk != NULL);
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &bn) == 1) {
            fuzz_check(BN_cmp(bn, walk) == 0);
        }
        BN_free(bn);
        BN_free(walk);
    }

    X509_free(x);
    ERR_clear_error();
}

static void
fuzz_mismatch(const char *what, const char *detail)
{
    fprintf(stderr, "fastsig: DIFFERENTIAL MISMATCH at first sight: %s%s\n",
            what, detail);
    abort();
}


/*
 * The first sight of the input's certificate: when it admits it, OpenSSL
 * must agree that it is a good client certificate of the CA now.
 */

static void
fuzz_first_sight(ngx_str_t *der)
{
    int                             err;
    X509                           *x;
    u_char                          key[32], md[32], hex[64];
    time_t                          now, at, nb;
    unsigned int                    n;
    const u_char                   *q;
    X509_STORE_CTX                 *xctx;
    ngx_http_mdm_signed_t           s;
    ngx_http_mdm_fastsig_entry_t   *e;

    ngx_memzero(&s, sizeof(ngx_http_mdm_signed_t));

    if (ngx_http_mdm_fastsig_walk(der, &s) != NGX_OK) {
        return;
    }

    fuzz_check(SHA256(s.cert, s.cert_len, key) != NULL);

    now = ngx_time();
    e = ngx_http_mdm_fastsig_first_sight(&cold, key, &s, now);
    ERR_clear_error();

    if (e == NULL) {
        return;
    }

    first_ok++;

    q = s.cert;
    x = d2i_X509(NULL, &q, (long) s.cert_len);
    if (x == NULL || q != s.cert + s.cert_len) {
        fuzz_mismatch("OpenSSL cannot read the certificate", "");
    }

    fuzz_check(X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32);
    ngx_hex_dump(hex, md, 32);

    nb = fuzz_asn1_time(X509_get0_notBefore(x));

    if (ngx_memcmp(hex, e->hex, 64) != 0
        || e->not_before != nb
        || e->not_after != fuzz_asn1_time(X509_get0_notAfter(x)))
    {
        fuzz_mismatch("another certificate or validity than OpenSSL's", "");
    }

    /* as ngx_http_mdm_identity_check() verifies it */
    at = now;
    if (now < nb && nb - now <= cold.skew) {
        at = nb;
    }

    xctx = X509_STORE_CTX_new();
    fuzz_check(xctx != NULL
               && X509_STORE_CTX_init(xctx, ca_cold.store, x,
                                      ca_cold.untrusted) == 1);
    X509_STORE_CTX_set_purpose(xctx, X509_PURPOSE_SSL_CLIENT);
    X509_STORE_CTX_set_time(xctx, 0, at);

    if (X509_verify_cert(xctx) != 1) {
        err = X509_STORE_CTX_get_error(xctx);
        fuzz_mismatch("X509_verify_cert() refuses the certificate: ",
                      X509_verify_cert_error_string(err));
    }

    X509_STORE_CTX_free(xctx);
    X509_free(x);
    ERR_clear_error();
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                       ref, shape;
    size_t                    blen;
    u_char                    hex[64];
    ngx_int_t                 fast;
    ngx_str_t                 body, der;
    ngx_http_request_t       *r;
    ngx_http_mdm_identity_t   id;

    if (size < 2) {
        return 0;
    }

    blen = (data[0] << 8) | data[1];
    if (blen > size - 2) {
        blen = size - 2;
    }

    r = fuzz_request(&mlcf);
    runs++;

    body.len = blen;
    body.data = fuzz_copy(r->pool, data + 2, blen);
    der.len = size - 2 - blen;
    der.data = fuzz_copy(r->pool, data + 2 + blen, der.len);

    ngx_memzero(&id, sizeof(ngx_http_mdm_identity_t));

    fast = ngx_http_mdm_fastsig_verify(&mlcf, &der, &body, &id);
    fuzz_check(fast == NGX_OK || fast == NGX_DECLINED);
    ERR_clear_error();

    ref = fuzz_openssl(&der, &body, hex, &shape);
    ERR_clear_error();

    ref_ok += ref;

    if (fast == NGX_OK) {
        fast_ok++;

        if (!ref || !shape || ngx_memcmp(hex, id.sha256, 64) != 0) {
            fprintf(stderr, "fastsig: DIFFERENTIAL MISMATCH: the fast path "
                    "accepted (certificate %.64s), OpenSSL %s%s\n",
                    id.sha256, ref ? "accepted" : "rejected",
                    ref && !shape ? " (not the shape of one detached signer)"
                    : (ref ? " with another signer" : ""));
            abort();
        }
    }

    fuzz_cert_walk(&der);

    /* the miss path: the first sight, then the request through it */
    fuzz_first_sight(&der);

    ngx_memzero(&id, sizeof(ngx_http_mdm_identity_t));

    fast = ngx_http_mdm_fastsig_verify(&cold, &der, &body, &id);
    fuzz_check(fast == NGX_OK || fast == NGX_DECLINED);
    ERR_clear_error();

    if (fast == NGX_OK) {
        cold_ok++;

        if (!ref || !shape || ngx_memcmp(hex, id.sha256, 64) != 0) {
            fuzz_mismatch("the request was accepted, OpenSSL ",
                          ref ? "accepted another shape or signer"
                              : "rejected it");
        }
    }

    fuzz_request_done(r);

    return 0;
}
