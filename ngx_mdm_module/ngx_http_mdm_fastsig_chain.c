
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The first sight of a signer certificate: a device certificate this
 * worker has neither a key entry nor a verdict for.  The full path parses
 * the CMS and the certificate through OpenSSL 3's decoders and builds the
 * chain with X509_verify_cert(), about 250 µs; here the certificate is
 * read with the DER walker (ngx_http_mdm_der_cert) and its signature
 * checked with the public key of its issuer, prepared once per worker:
 * the issuer is a root of mdm_identity_ca or one of its intermediates
 * whose own chain to a root was checked when it was prepared.
 *
 * The rules are the full path's (ngx_http_mdm_identity_check): the chain
 * for the SSL client purpose with X509_verify_cert()'s defaults, every
 * certificate valid at the current time, or at the leaf's notBefore when
 * that is at most mdm_signature_skew ahead.  Whatever this file does not
 * fully understand (an issuer name shared by two CA certificates, an
 * extension OpenSSL interprets and this file does not, a name constraint,
 * a path length, a key that is neither RSA nor EC, ...) is NULL: the full
 * path decides, so both give the same verdicts.
 */


#include "ngx_http_mdm_identity_private.h"
#include "ngx_http_mdm_fastsig_chain.h"

#include <openssl/x509v3.h>


/* the certificates an issuer's chain may hold, itself to the root */
#define NGX_HTTP_MDM_CHAIN_DEPTH   6

/* the distinct mdm_identity_ca one worker prepares */
#define NGX_HTTP_MDM_CHAIN_CAS     8


/* a CA certificate that may sign device certificates */
typedef struct {
    u_char                 *subject;      /* DER of its subject Name */
    size_t                  subject_len;
    u_char                 *skid;         /* its subjectKeyIdentifier */
    size_t                  skid_len;
    EVP_PKEY               *pkey;
    int                     type;         /* EVP_PKEY_RSA or EVP_PKEY_EC */
    EVP_PKEY_CTX           *pctx[3];      /* SHA-256, -384, -512 */
    time_t                  not_before;   /* when its whole chain is valid */
    time_t                  not_after;
} ngx_http_mdm_chain_issuer_t;


typedef struct {
    ngx_http_mdm_ca_t            *ca;
    ngx_http_mdm_chain_issuer_t  *issuers;
    ngx_uint_t                    nissuers;
} ngx_http_mdm_chain_ca_t;


static ngx_http_mdm_chain_ca_t *ngx_http_mdm_chain_ca(ngx_http_mdm_ca_t *ca);
static void ngx_http_mdm_chain_prepare(ngx_http_mdm_chain_ca_t *cca,
    STACK_OF(X509) *all, int nroots);
static ngx_int_t ngx_http_mdm_chain_path(STACK_OF(X509) *all, int nroots,
    int x, X509 **path, int *n);
static ngx_int_t ngx_http_mdm_chain_rules(X509 **path, int n,
    time_t *not_before, time_t *not_after);
static ngx_int_t ngx_http_mdm_chain_time(const ASN1_TIME *t, time_t *v);
static ngx_int_t ngx_http_mdm_chain_issuer(ngx_http_mdm_chain_issuer_t *iss,
    X509 *x, time_t not_before, time_t not_after);
static void ngx_http_mdm_chain_issuer_free(ngx_http_mdm_chain_issuer_t *iss);
static ngx_int_t ngx_http_mdm_chain_leaf(ngx_http_mdm_chain_ca_t *cca,
    ngx_http_mdm_der_cert_t *c, ngx_http_mdm_chain_issuer_t **issp);
static ngx_int_t ngx_http_mdm_chain_signed(ngx_http_mdm_chain_issuer_t *iss,
    ngx_http_mdm_der_cert_t *c);


static ngx_http_mdm_chain_ca_t  ngx_http_mdm_chain_cas[NGX_HTTP_MDM_CHAIN_CAS];
static ngx_uint_t               ngx_http_mdm_chain_ncas;
static EVP_MD                  *ngx_http_mdm_chain_md[3];
static EVP_MD_CTX              *ngx_http_mdm_chain_mdctx;


ngx_http_mdm_fastsig_entry_t *
ngx_http_mdm_fastsig_first_sight(ngx_http_mdm_loc_conf_t *mlcf, u_char *key,
    ngx_http_mdm_signed_t *s, time_t now)
{
    time_t                         at;
    ngx_http_mdm_der_cert_t        c;
    ngx_http_mdm_chain_ca_t       *cca;
    ngx_http_mdm_fastsig_times_t   t;
    ngx_http_mdm_chain_issuer_t   *iss;

    if (mlcf->ca == NULL || mlcf->ca == NGX_CONF_UNSET_PTR) {
        return NULL;
    }

    cca = ngx_http_mdm_chain_ca(mlcf->ca);
    if (cca == NULL || cca->nissuers == 0) {
        return NULL;
    }

    ngx_memzero(&c, sizeof(ngx_http_mdm_der_cert_t));

    if (ngx_http_mdm_der_cert(s, &c) != NGX_OK
        || ngx_http_mdm_chain_leaf(cca, &c, &iss) != NGX_OK)
    {
        return NULL;
    }

    /* X509_verify_cert() at the time ngx_http_mdm_identity_check() sets */
    at = now;
    if (now < c.not_before && c.not_before - now <= mlcf->skew) {
        at = c.not_before;
    }

    if (at < c.not_before || at >= c.not_after
        || at < iss->not_before || at >= iss->not_after)
    {
        return NULL;
    }

    if (ngx_http_mdm_chain_signed(iss, &c) != NGX_OK) {
        return NULL;
    }

    t.not_before = c.not_before;
    t.not_after = c.not_after;
    t.expires = ngx_min(now + NGX_HTTP_MDM_FASTSIG_TTL, iss->not_after);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "mdm: certificate chain checked at first sight");

    return ngx_http_mdm_fastsig_admit(mlcf, key, s, &t);
}


/*
 * The leaf's issuer among the prepared ones (by the bytes of its Name),
 * and the leaf rules of the SSL client purpose: keyUsage with
 * digitalSignature or keyAgreement, extKeyUsage with clientAuth, an
 * authorityKeyIdentifier that is the issuer's subjectKeyIdentifier.
 */

static ngx_int_t
ngx_http_mdm_chain_leaf(ngx_http_mdm_chain_ca_t *cca,
    ngx_http_mdm_der_cert_t *c, ngx_http_mdm_chain_issuer_t **issp)
{
    ngx_uint_t                    i;
    ngx_http_mdm_chain_issuer_t  *iss;

    iss = NULL;

    for (i = 0; i < cca->nissuers; i++) {

        /*
         * a leaf named like a CA certificate could be taken for
         * self-issued, or for that CA, by the chain builder
         */
        if (ngx_http_mdm_der_name_like(c->subject, c->subject_len,
                                       cca->issuers[i].subject,
                                       cca->issuers[i].subject_len))
        {
            return NGX_DECLINED;
        }

        if (c->issuer_len == cca->issuers[i].subject_len
            && ngx_memcmp(c->issuer, cca->issuers[i].subject, c->issuer_len)
               == 0)
        {
            iss = &cca->issuers[i];
        }
    }

    if (iss == NULL
        || (c->has_key_usage
            && !(c->key_usage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)))
        || (c->has_ext_key_usage && !c->client_auth))
    {
        return NGX_DECLINED;
    }

    if (c->akid
        && (iss->skid == NULL || c->akid_len != iss->skid_len
            || ngx_memcmp(c->akid, iss->skid, c->akid_len) != 0))
    {
        return NGX_DECLINED;
    }

    *issp = iss;

    return NGX_OK;
}


/* the leaf's signature, by the issuer's key */

static ngx_int_t
ngx_http_mdm_chain_signed(ngx_http_mdm_chain_issuer_t *iss,
    ngx_http_mdm_der_cert_t *c)
{
    u_char        md[EVP_MAX_MD_SIZE];
    ngx_uint_t    i;
    unsigned int  mdlen;

    switch (c->sig_nid) {

    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
        /* the parameters DER gives them: NULL */
        if (iss->type != EVP_PKEY_RSA || !c->sig_params) {
            return NGX_DECLINED;
        }

        i = (c->sig_nid == NID_sha256WithRSAEncryption) ? 0
            : (c->sig_nid == NID_sha384WithRSAEncryption) ? 1 : 2;
        break;

    case NID_ecdsa_with_SHA256:
    case NID_ecdsa_with_SHA384:
    case NID_ecdsa_with_SHA512:
        if (iss->type != EVP_PKEY_EC || c->sig_params) {
            return NGX_DECLINED;
        }

        i = (c->sig_nid == NID_ecdsa_with_SHA256) ? 0
            : (c->sig_nid == NID_ecdsa_with_SHA384) ? 1 : 2;
        break;

    default:
        return NGX_DECLINED;
    }

    if (EVP_DigestInit_ex2(ngx_http_mdm_chain_mdctx, ngx_http_mdm_chain_md[i],
                           NULL) != 1
        || EVP_DigestUpdate(ngx_http_mdm_chain_mdctx, c->tbs, c->tbs_len) != 1
        || EVP_DigestFinal_ex(ngx_http_mdm_chain_mdctx, md, &mdlen) != 1
        || EVP_PKEY_verify(iss->pctx[i], c->sig, c->sig_len, md, mdlen) != 1)
    {
        ERR_clear_error();
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the prepared issuers of a CA, made on its first use in this worker */

static ngx_http_mdm_chain_ca_t *
ngx_http_mdm_chain_ca(ngx_http_mdm_ca_t *ca)
{
    int                        i, nroots;
    X509                      *x;
    ngx_uint_t                 n;
    X509_OBJECT               *obj;
    STACK_OF(X509)            *all;
    STACK_OF(X509_OBJECT)     *objs;
    ngx_http_mdm_chain_ca_t   *cca;

    static const char  *names[] = { "SHA256", "SHA384", "SHA512" };

    for (n = 0; n < ngx_http_mdm_chain_ncas; n++) {
        if (ngx_http_mdm_chain_cas[n].ca == ca) {
            return &ngx_http_mdm_chain_cas[n];
        }
    }

    if (ngx_http_mdm_chain_ncas == NGX_HTTP_MDM_CHAIN_CAS) {
        return NULL;
    }

    if (ngx_http_mdm_chain_mdctx == NULL) {
        ngx_http_mdm_chain_mdctx = EVP_MD_CTX_new();

        for (n = 0; n < 3; n++) {
            ngx_http_mdm_chain_md[n] = EVP_MD_fetch(NULL, names[n], NULL);

            if (ngx_http_mdm_chain_md[n] == NULL) {
                ERR_clear_error();
                return NULL;
            }
        }

        if (ngx_http_mdm_chain_mdctx == NULL) {
            return NULL;
        }
    }

    cca = &ngx_http_mdm_chain_cas[ngx_http_mdm_chain_ncas++];
    cca->ca = ca;

    /* the roots first, then the intermediates of mdm_identity_ca */
    all = sk_X509_new_null();
    if (all == NULL) {
        return cca;
    }

    objs = X509_STORE_get0_objects(ca->store);
    nroots = 0;

    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        obj = sk_X509_OBJECT_value(objs, i);
        x = X509_OBJECT_get0_X509(obj);

        if (x && sk_X509_push(all, x)) {
            nroots++;
        }
    }

    for (i = 0; i < sk_X509_num(ca->untrusted); i++) {
        sk_X509_push(all, sk_X509_value(ca->untrusted, i));
    }

    ngx_http_mdm_chain_prepare(cca, all, nroots);

    sk_X509_free(all);
    ERR_clear_error();

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "mdm: %ui of the %d certificates of mdm_identity_ca "
                  "\"%V\" verify device certificates at first sight",
                  cca->nissuers, sk_X509_num(ca->untrusted) + nroots,
                  &ca->file);

    return cca;
}


static void
ngx_http_mdm_chain_prepare(ngx_http_mdm_chain_ca_t *cca, STACK_OF(X509) *all,
    int nroots)
{
    int                           i, n;
    X509                         *path[NGX_HTTP_MDM_CHAIN_DEPTH];
    time_t                        not_before, not_after;
    ngx_http_mdm_chain_issuer_t  *iss;

    cca->issuers = ngx_alloc(sk_X509_num(all)
                             * sizeof(ngx_http_mdm_chain_issuer_t),
                             ngx_cycle->log);
    if (cca->issuers == NULL) {
        return;
    }

    for (i = 0; i < sk_X509_num(all); i++) {

        if (ngx_http_mdm_chain_path(all, nroots, i, path, &n) != NGX_OK
            || ngx_http_mdm_chain_rules(path, n, &not_before, &not_after)
               != NGX_OK)
        {
            continue;
        }

        iss = &cca->issuers[cca->nissuers];

        if (ngx_http_mdm_chain_issuer(iss, path[0], not_before, not_after)
            == NGX_OK)
        {
            cca->nissuers++;
        }
    }
}


/*
 * The chain X509_verify_cert() builds above a leaf issued by all[x]:
 * all[x], its issuer, ... up to a root.  Each Name must belong to one
 * certificate only (two CA certificates with the same subject leave the
 * choice to the chain builder's rules: the full path decides).
 */

static ngx_int_t
ngx_http_mdm_chain_path(STACK_OF(X509) *all, int nroots, int x, X509 **path,
    int *n)
{
    int    i, k, found, at;
    X509  *top;

    for (k = 0; ; k++) {

        if (k == NGX_HTTP_MDM_CHAIN_DEPTH) {
            return NGX_DECLINED;
        }

        path[k] = sk_X509_value(all, x);

        /* nobody else bears this certificate's name */
        found = 0;

        for (i = 0; i < sk_X509_num(all); i++) {
            if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(all, i)),
                              X509_get_subject_name(path[k])) == 0)
            {
                found++;
            }
        }

        if (found != 1) {
            return NGX_DECLINED;
        }

        if (x < nroots) {
            *n = k + 1;
            return NGX_OK;
        }

        /* the issuer of an intermediate */
        top = path[k];
        at = -1;

        for (i = 0; i < sk_X509_num(all); i++) {
            if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(all, i)),
                              X509_get_issuer_name(top)) == 0)
            {
                if (at != -1) {
                    return NGX_DECLINED;
                }

                at = i;
            }
        }

        if (at == -1 || at == x
            || X509_check_issued(sk_X509_value(all, at), top) != X509_V_OK
            || X509_verify(top, X509_get0_pubkey(sk_X509_value(all, at)))
               != 1)
        {
            return NGX_DECLINED;
        }

        x = at;
    }
}


/*
 * What X509_verify_cert() checks of the CA certificates above a leaf, at
 * positions 1 to n of the chain, independent of the leaf: CA and SSL
 * client purpose, no critical extension OpenSSL does not handle, path
 * lengths, the root trusted, no name or policy constraints (they depend
 * on the leaf: the full path decides); and the time they are all valid.
 */

static ngx_int_t
ngx_http_mdm_chain_rules(X509 **path, int n, time_t *not_before,
    time_t *not_after)
{
    int        i, k, plen;
    long       pathlen;
    size_t     e;
    time_t     nb, na;
    uint32_t   flags;

    static const int  leaf_dependent[] = {
        NID_name_constraints, NID_policy_constraints,
        NID_inhibit_any_policy, NID_policy_mappings,
        NID_sbgp_ipAddrBlock, NID_sbgp_autonomousSysNum
    };

    *not_before = 0;
    *not_after = NGX_MAX_TIME_T_VALUE;
    plen = 0;

    for (k = 0; k < n; k++) {
        i = k + 1;     /* the position in the chain, the leaf at 0 */

        flags = X509_get_extension_flags(path[k]);

        if (flags & (EXFLAG_INVALID | EXFLAG_CRITICAL | EXFLAG_PROXY)) {
            return NGX_DECLINED;
        }

        if ((k + 1 < n) ? X509_check_ca(path[k]) != 1
                        : X509_check_ca(path[k]) == 0)
        {
            return NGX_DECLINED;
        }

        if (X509_check_purpose(path[k], X509_PURPOSE_SSL_CLIENT, 1) != 1) {
            return NGX_DECLINED;
        }

        for (e = 0; e < sizeof(leaf_dependent) / sizeof(int); e++) {
            if (X509_get_ext_by_NID(path[k], leaf_dependent[e], -1) >= 0) {
                return NGX_DECLINED;
            }
        }

        pathlen = X509_get_pathlen(path[k]);

        if (i > 1 && pathlen != -1 && plen > pathlen) {
            return NGX_DECLINED;
        }

        if (!(flags & EXFLAG_SI)) {
            plen++;
        }

        if (ngx_http_mdm_chain_time(X509_get0_notBefore(path[k]), &nb)
            != NGX_OK
            || ngx_http_mdm_chain_time(X509_get0_notAfter(path[k]), &na)
               != NGX_OK)
        {
            return NGX_DECLINED;
        }

        *not_before = ngx_max(*not_before, nb);
        *not_after = ngx_min(*not_after, na);
    }

    /* the root: trusted as a plain self-signed certificate */
    if (X509_get0_trust_objects(path[n - 1]) != NULL
        || X509_get0_reject_objects(path[n - 1]) != NULL
        || X509_check_trust(path[n - 1], X509_TRUST_SSL_CLIENT, 0)
           != X509_TRUST_TRUSTED)
    {
        return NGX_DECLINED;
    }

    /* the first one signs leaves: keyCertSign, if it has a keyUsage */
    if ((X509_get_extension_flags(path[0]) & EXFLAG_KUSAGE)
        && !(X509_get_key_usage(path[0]) & KU_KEY_CERT_SIGN))
    {
        return NGX_DECLINED;
    }

    return (*not_before < *not_after) ? NGX_OK : NGX_DECLINED;
}


/* a validity time in the one form X509_cmp_time() and the walk share */

static ngx_int_t
ngx_http_mdm_chain_time(const ASN1_TIME *t, time_t *v)
{
    int     len;
    u_char  *der;

    der = NULL;
    len = i2d_ASN1_TIME(t, &der);

    if (len <= 0) {
        return NGX_DECLINED;
    }

    *v = ngx_http_mdm_der_time(der, der + len);
    OPENSSL_free(der);

    return (*v == (time_t) -1) ? NGX_DECLINED : NGX_OK;
}


static ngx_int_t
ngx_http_mdm_chain_issuer(ngx_http_mdm_chain_issuer_t *iss, X509 *x,
    time_t not_before, time_t not_after)
{
    int                        len, i;
    u_char                    *p;
    EVP_PKEY                  *pkey;
    const ASN1_OCTET_STRING   *skid;

    ngx_memzero(iss, sizeof(ngx_http_mdm_chain_issuer_t));

    pkey = X509_get0_pubkey(x);
    if (pkey == NULL) {
        return NGX_DECLINED;
    }

    iss->type = EVP_PKEY_get_base_id(pkey);
    if (iss->type != EVP_PKEY_RSA && iss->type != EVP_PKEY_EC) {
        return NGX_DECLINED;
    }

    len = i2d_X509_NAME(X509_get_subject_name(x), NULL);
    iss->subject = (len > 0) ? ngx_alloc(len, ngx_cycle->log) : NULL;
    if (iss->subject == NULL) {
        return NGX_DECLINED;
    }

    p = iss->subject;
    iss->subject_len = i2d_X509_NAME(X509_get_subject_name(x), &p);

    skid = X509_get0_subject_key_id(x);
    if (skid && ASN1_STRING_length(skid) > 0) {
        iss->skid_len = ASN1_STRING_length(skid);
        iss->skid = ngx_alloc(iss->skid_len, ngx_cycle->log);
        if (iss->skid == NULL) {
            ngx_http_mdm_chain_issuer_free(iss);
            return NGX_DECLINED;
        }

        ngx_memcpy(iss->skid, ASN1_STRING_get0_data(skid), iss->skid_len);
    }

    EVP_PKEY_up_ref(pkey);
    iss->pkey = pkey;

    for (i = 0; i < 3; i++) {
        iss->pctx[i] = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

        if (iss->pctx[i] == NULL
            || EVP_PKEY_verify_init(iss->pctx[i]) != 1
            || EVP_PKEY_CTX_set_signature_md(iss->pctx[i],
                                             ngx_http_mdm_chain_md[i]) != 1)
        {
            ngx_http_mdm_chain_issuer_free(iss);
            return NGX_DECLINED;
        }
    }

    iss->not_before = not_before;
    iss->not_after = not_after;

    return NGX_OK;
}


static void
ngx_http_mdm_chain_issuer_free(ngx_http_mdm_chain_issuer_t *iss)
{
    ngx_uint_t  i;

    for (i = 0; i < 3; i++) {
        EVP_PKEY_CTX_free(iss->pctx[i]);
    }

    EVP_PKEY_free(iss->pkey);
    ngx_free(iss->subject);
    ngx_free(iss->skid);
    ngx_memzero(iss, sizeof(ngx_http_mdm_chain_issuer_t));
}


void
ngx_http_mdm_fastsig_chain_exit(void)
{
    ngx_uint_t                n, i;
    ngx_http_mdm_chain_ca_t  *cca;

    for (n = 0; n < ngx_http_mdm_chain_ncas; n++) {
        cca = &ngx_http_mdm_chain_cas[n];

        for (i = 0; i < cca->nissuers; i++) {
            ngx_http_mdm_chain_issuer_free(&cca->issuers[i]);
        }

        ngx_free(cca->issuers);
        ngx_memzero(cca, sizeof(ngx_http_mdm_chain_ca_t));
    }

    ngx_http_mdm_chain_ncas = 0;

    for (i = 0; i < 3; i++) {
        EVP_MD_free(ngx_http_mdm_chain_md[i]);
        ngx_http_mdm_chain_md[i] = NULL;
    }

    EVP_MD_CTX_free(ngx_http_mdm_chain_mdctx);
    ngx_http_mdm_chain_mdctx = NULL;
}
