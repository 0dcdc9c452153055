
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The DER walk of the Mdm-Signature fast path: no allocation, no OpenSSL
 * decoder.  It accepts only the plain shape devices send: definite
 * lengths, one certificate, one signer identified by issuer and serial,
 * DER-ordered signed attributes with contentType id-data and a
 * messageDigest, an RSA PKCS#1 v1.5 or ECDSA signature.  Anything else is
 * NGX_DECLINED, and the full path decides.
 */


#include "ngx_http_mdm_fastsig_der.h"

#include <openssl/objects.h>


static ngx_int_t ngx_http_mdm_der(u_char **p, u_char *end,
    ngx_http_mdm_der_t *e);
static ngx_int_t ngx_http_mdm_der_expect(u_char **p, u_char *end, u_int tag,
    ngx_http_mdm_der_t *e);
static ngx_int_t ngx_http_mdm_fastsig_signer(u_char *p, u_char *end,
    ngx_http_mdm_signed_t *s);
static ngx_int_t ngx_http_mdm_fastsig_attrs(u_char *p, u_char *end,
    ngx_http_mdm_signed_t *s);
static ngx_int_t ngx_http_mdm_fastsig_alg(ngx_http_mdm_der_t *alg,
    ngx_http_mdm_der_t *oid);
static ngx_int_t ngx_http_mdm_oid_is(ngx_http_mdm_der_t *e, int nid);
static int ngx_http_mdm_oid_nid(ngx_http_mdm_der_t *e);
static ngx_int_t ngx_http_mdm_der_validity(u_char **p, u_char *end,
    ngx_http_mdm_der_cert_t *c);
static ngx_int_t ngx_http_mdm_der_name(ngx_http_mdm_der_t *name);
static ngx_int_t ngx_http_mdm_der_extensions(ngx_http_mdm_der_t *exts,
    ngx_http_mdm_der_cert_t *c);
static ngx_int_t ngx_http_mdm_der_extension(ngx_http_mdm_der_t *oid,
    ngx_uint_t critical, ngx_http_mdm_der_t *val, ngx_http_mdm_der_cert_t *c);
static ngx_int_t ngx_http_mdm_der_atv(u_char **p, u_char *end,
    ngx_http_mdm_der_t *oid, ngx_http_mdm_der_t *v);
static ngx_uint_t ngx_http_mdm_der_folded_eq(u_char *a, size_t alen,
    u_char *b, size_t blen);
static ngx_int_t ngx_http_mdm_der_altnames(ngx_http_mdm_der_t *val);
static ngx_int_t ngx_http_mdm_der_int(ngx_http_mdm_der_t *e);
static ngx_int_t ngx_http_mdm_der_oid(ngx_http_mdm_der_t *e);


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
ngx_http_mdm_der_init(void)
{
    ngx_uint_t          i;
    const ASN1_OBJECT  *obj;

    for (i = 0; i < NGX_HTTP_MDM_FASTSIG_OIDS; i++) {
        obj = OBJ_nid2obj(ngx_http_mdm_fastsig_nids[i]);
        if (obj == NULL) {
            return NGX_ERROR;
        }

        ngx_http_mdm_fastsig_oid[i].nid = ngx_http_mdm_fastsig_nids[i];
        ngx_http_mdm_fastsig_oid[i].data = OBJ_get0_data(obj);
        ngx_http_mdm_fastsig_oid[i].len = OBJ_length(obj);
    }

    return NGX_OK;
}


/* the DER walk */

ngx_int_t
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

    s->md_nid = ngx_http_mdm_oid_nid(&oid);

    switch (s->md_nid) {
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha1:
        break;
    default:
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


/*
 * The signer certificate's issuer and serial number, and its RSA modulus
 * and exponent, from its DER: Certificate { TBSCertificate { [0] version,
 * serial, signature, issuer, validity, subject, subjectPublicKeyInfo ...
 */

ngx_int_t
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


/*
 * The first sight of a signer certificate (ngx_http_mdm_fastsig_chain.c)
 * reads it here, all of it, in strict DER: Certificate { TBSCertificate
 * { [0] v3, serial, signature, issuer, validity, subject,
 * subjectPublicKeyInfo, [3] extensions }, signatureAlgorithm, signature }.
 * Whatever OpenSSL's parse could refuse or read otherwise (a long form
 * where a short one fits, a non-minimal INTEGER, a malformed OID, a
 * string that is not plain ASCII, a time that is not YYMMDDHHMMSSZ, an
 * extension OpenSSL interprets and this walk does not) is NGX_DECLINED,
 * and the full path decides.
 */

ngx_int_t
ngx_http_mdm_der_cert(ngx_http_mdm_signed_t *s, ngx_http_mdm_der_cert_t *c)
{
    u_char              *p;
    ngx_http_mdm_der_t   cert, tbs, x, alg, oid, bits;

    p = s->cert;

    if (ngx_http_mdm_der_expect(&p, s->cert + s->cert_len, 0x30, &cert)
        != NGX_OK
        || p != s->cert + s->cert_len)
    {
        return NGX_DECLINED;
    }

    p = cert.pos;

    if (ngx_http_mdm_der_expect(&p, cert.end, 0x30, &tbs) != NGX_OK
        || ngx_http_mdm_der_expect(&p, cert.end, 0x30, &alg) != NGX_OK
        || ngx_http_mdm_fastsig_alg(&alg, &oid) != NGX_OK
        || ngx_http_mdm_der_expect(&p, cert.end, 0x03, &bits) != NGX_OK
        || p != cert.end
        || bits.end - bits.pos < 2 || bits.pos[0] != 0)
    {
        return NGX_DECLINED;
    }

    c->tbs = tbs.start;
    c->tbs_len = tbs.end - tbs.start;
    c->sig_alg = alg.start;
    c->sig_alg_len = alg.end - alg.start;
    c->sig_nid = ngx_http_mdm_oid_nid(&oid);
    c->sig_params = (oid.end != alg.end);
    c->sig = bits.pos + 1;
    c->sig_len = bits.end - bits.pos - 1;

    p = tbs.pos;

    /* [0] { INTEGER 2 }: v3 */
    if (tbs.end - p < 5 || ngx_memcmp(p, "\xa0\x03\x02\x01\x02", 5) != 0) {
        return NGX_DECLINED;
    }

    p += 5;

    /* serial: positive and minimal; signature: the outer one, verbatim */
    if (ngx_http_mdm_der_expect(&p, tbs.end, 0x02, &x) != NGX_OK
        || ngx_http_mdm_der_int(&x) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK
        || (size_t) (x.end - x.start) != c->sig_alg_len
        || ngx_memcmp(x.start, c->sig_alg, c->sig_alg_len) != 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK
        || ngx_http_mdm_der_name(&x) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    c->issuer = x.start;
    c->issuer_len = x.end - x.start;

    if (ngx_http_mdm_der_validity(&p, tbs.end, c) != NGX_OK
        || ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK
        || ngx_http_mdm_der_name(&x) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    c->subject = x.start;
    c->subject_len = x.end - x.start;

    /* subjectPublicKeyInfo: read by ngx_http_mdm_fastsig_cert() */
    if (ngx_http_mdm_der_expect(&p, tbs.end, 0x30, &x) != NGX_OK) {
        return NGX_DECLINED;
    }

    /* no unique identifiers; extensions, then nothing */
    if (ngx_http_mdm_der_expect(&p, tbs.end, 0xa3, &x) != NGX_OK
        || p != tbs.end)
    {
        return NGX_DECLINED;
    }

    return ngx_http_mdm_der_extensions(&x, c);
}


static ngx_int_t
ngx_http_mdm_der_validity(u_char **p, u_char *end, ngx_http_mdm_der_cert_t *c)
{
    u_char              *q;
    ngx_http_mdm_der_t   v, t;

    if (ngx_http_mdm_der_expect(p, end, 0x30, &v) != NGX_OK) {
        return NGX_DECLINED;
    }

    q = v.pos;

    if (ngx_http_mdm_der(&q, v.end, &t) != NGX_OK) {
        return NGX_DECLINED;
    }

    c->not_before = ngx_http_mdm_der_time(t.start, t.end);

    if (c->not_before == (time_t) -1 || t.end - t.start > 17
        || ngx_http_mdm_der(&q, v.end, &t) != NGX_OK || q != v.end)
    {
        return NGX_DECLINED;
    }

    c->not_after = ngx_http_mdm_der_time(t.start, t.end);

    if (c->not_after == (time_t) -1 || t.end - t.start > 17) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Name: RDNs of one attribute each, an OID and a PrintableString,
 * UTF8String or IA5String of printable ASCII (nothing OpenSSL's
 * canonical form could fail on); at least one RDN.
 */

static ngx_int_t
ngx_http_mdm_der_name(ngx_http_mdm_der_t *name)
{
    u_char              *p, *q, *r;
    ngx_http_mdm_der_t   rdn, atv, oid, v;

    p = name->pos;

    if (p == name->end) {
        return NGX_DECLINED;
    }

    while (p < name->end) {
        if (ngx_http_mdm_der_expect(&p, name->end, 0x31, &rdn) != NGX_OK) {
            return NGX_DECLINED;
        }

        q = rdn.pos;

        if (ngx_http_mdm_der_expect(&q, rdn.end, 0x30, &atv) != NGX_OK
            || q != rdn.end)
        {
            return NGX_DECLINED;
        }

        q = atv.pos;

        if (ngx_http_mdm_der_expect(&q, atv.end, 0x06, &oid) != NGX_OK
            || ngx_http_mdm_der_oid(&oid) != NGX_OK
            || ngx_http_mdm_der(&q, atv.end, &v) != NGX_OK
            || q != atv.end
            || (v.tag != 0x13 && v.tag != 0x0c && v.tag != 0x16)
            || v.pos == v.end)
        {
            return NGX_DECLINED;
        }

        for (r = v.pos; r < v.end; r++) {
            if (*r < 0x20 || *r > 0x7e) {
                return NGX_DECLINED;
            }
        }
    }

    return NGX_OK;
}


/*
 * The extensions OpenSSL interprets for a client certificate, read here
 * (basicConstraints without cA, keyUsage, extKeyUsage, subject and
 * authority key identifiers, subjectAltName); any other standard (id-ce, id-pe) or
 * Netscape extension, any unknown critical one, any repeated one, and
 * the walk declines.  Unknown non-critical ones are ignored, as OpenSSL
 * does.
 */

#define NGX_HTTP_MDM_DER_EXTS  16

static ngx_int_t
ngx_http_mdm_der_extensions(ngx_http_mdm_der_t *exts,
    ngx_http_mdm_der_cert_t *c)
{
    u_char              *p, *q;
    ngx_uint_t           n, i, critical;
    ngx_http_mdm_der_t   seq, ext, oid, b, val, seen[NGX_HTTP_MDM_DER_EXTS];

    p = exts->pos;

    if (ngx_http_mdm_der_expect(&p, exts->end, 0x30, &seq) != NGX_OK
        || p != exts->end || seq.pos == seq.end)
    {
        return NGX_DECLINED;
    }

    p = seq.pos;
    n = 0;

    while (p < seq.end) {
        if (n == NGX_HTTP_MDM_DER_EXTS
            || ngx_http_mdm_der_expect(&p, seq.end, 0x30, &ext) != NGX_OK)
        {
            return NGX_DECLINED;
        }

        q = ext.pos;

        if (ngx_http_mdm_der_expect(&q, ext.end, 0x06, &oid) != NGX_OK
            || ngx_http_mdm_der_oid(&oid) != NGX_OK
            || ngx_http_mdm_der(&q, ext.end, &b) != NGX_OK)
        {
            return NGX_DECLINED;
        }

        critical = 0;

        if (b.tag == 0x01) {
            /* DER encodes FALSE by leaving the field out */
            if (b.end - b.pos != 1 || b.pos[0] != 0xff
                || ngx_http_mdm_der(&q, ext.end, &b) != NGX_OK)
            {
                return NGX_DECLINED;
            }

            critical = 1;
        }

        if (b.tag != 0x04 || q != ext.end) {
            return NGX_DECLINED;
        }

        for (i = 0; i < n; i++) {
            if (seen[i].end - seen[i].pos == oid.end - oid.pos
                && ngx_memcmp(seen[i].pos, oid.pos, oid.end - oid.pos) == 0)
            {
                return NGX_DECLINED;
            }
        }

        seen[n++] = oid;

        val.pos = b.pos;
        val.end = b.end;

        if (ngx_http_mdm_der_extension(&oid, critical, &val, c) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_der_extension(ngx_http_mdm_der_t *oid, ngx_uint_t critical,
    ngx_http_mdm_der_t *val, ngx_http_mdm_der_cert_t *c)
{
    u_char              *p, *q;
    size_t               len;
    ngx_http_mdm_der_t   x, kp;

    len = oid->end - oid->pos;
    p = val->pos;

    if (len == 3 && oid->pos[0] == 0x55 && oid->pos[1] == 0x1d) {

        switch (oid->pos[2]) {

        case 0x13: /* basicConstraints: cA FALSE, no pathLen */
            return (val->end - p == 2 && p[0] == 0x30 && p[1] == 0)
                   ? NGX_OK : NGX_DECLINED;

        case 0x0f: /* keyUsage: a named-bit BIT STRING in DER */
            if (ngx_http_mdm_der_expect(&p, val->end, 0x03, &x) != NGX_OK
                || p != val->end
                || x.end - x.pos < 2 || x.end - x.pos > 3
                || x.pos[0] > 7
                || x.end[-1] == 0
                || (x.end[-1] & ((1 << x.pos[0]) - 1)) != 0)
            {
                return NGX_DECLINED;
            }

            c->has_key_usage = 1;
            c->key_usage = x.pos[1]
                           | ((x.end - x.pos == 3) ? x.pos[2] << 8 : 0);
            return NGX_OK;

        case 0x25: /* extKeyUsage: OIDs */
            if (ngx_http_mdm_der_expect(&p, val->end, 0x30, &x) != NGX_OK
                || p != val->end || x.pos == x.end)
            {
                return NGX_DECLINED;
            }

            q = x.pos;

            while (q < x.end) {
                if (ngx_http_mdm_der_expect(&q, x.end, 0x06, &kp) != NGX_OK
                    || ngx_http_mdm_der_oid(&kp) != NGX_OK)
                {
                    return NGX_DECLINED;
                }

                if (kp.end - kp.pos == 8
                    && ngx_memcmp(kp.pos, "\x2b\x06\x01\x05\x05\x07\x03\x02",
                                  8) == 0)
                {
                    c->client_auth = 1;
                }
            }

            c->has_ext_key_usage = 1;
            return NGX_OK;

        case 0x0e: /* subjectKeyIdentifier */
            return (ngx_http_mdm_der_expect(&p, val->end, 0x04, &x) == NGX_OK
                    && p == val->end && x.pos != x.end)
                   ? NGX_OK : NGX_DECLINED;

        case 0x11: /* subjectAltName */
            return ngx_http_mdm_der_altnames(val);

        case 0x23: /* authorityKeyIdentifier: a keyIdentifier only */
            if (ngx_http_mdm_der_expect(&p, val->end, 0x30, &x) != NGX_OK
                || p != val->end
                || (q = x.pos,
                    ngx_http_mdm_der_expect(&q, x.end, 0x80, &kp)) != NGX_OK
                || q != x.end || kp.pos == kp.end)
            {
                return NGX_DECLINED;
            }

            c->akid = kp.pos;
            c->akid_len = kp.end - kp.pos;
            return NGX_OK;

        default:
            return NGX_DECLINED;
        }
    }

    /* the rest of id-ce, id-pe (1.3.6.1.5.5.7.1) and Netscape's */
    if ((len >= 2 && oid->pos[0] == 0x55 && oid->pos[1] == 0x1d)
        || (len >= 7
            && ngx_memcmp(oid->pos, "\x2b\x06\x01\x05\x05\x07\x01", 7) == 0)
        || (len >= 7
            && ngx_memcmp(oid->pos, "\x60\x86\x48\x01\x86\xf8\x42", 7) == 0)
        || critical)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Whether OpenSSL could take two Names for the same one (X509_NAME_cmp()
 * compares them canonically: case and spaces folded, string types
 * ignored): 0 only when they surely differ.  A Name outside the plain
 * shape of ngx_http_mdm_der_name() may be anything: 1.
 */

ngx_uint_t
ngx_http_mdm_der_name_like(u_char *a, size_t alen, u_char *b, size_t blen)
{
    u_char              *p, *q;
    ngx_http_mdm_der_t   na, nb, oa, va, ob, vb;

    p = a;
    q = b;

    if (ngx_http_mdm_der_expect(&p, a + alen, 0x30, &na) != NGX_OK
        || ngx_http_mdm_der_expect(&q, b + blen, 0x30, &nb) != NGX_OK
        || ngx_http_mdm_der_name(&na) != NGX_OK
        || ngx_http_mdm_der_name(&nb) != NGX_OK)
    {
        return 1;
    }

    p = na.pos;
    q = nb.pos;

    while (p < na.end && q < nb.end) {
        if (ngx_http_mdm_der_atv(&p, na.end, &oa, &va) != NGX_OK
            || ngx_http_mdm_der_atv(&q, nb.end, &ob, &vb) != NGX_OK)
        {
            return 1;
        }

        if (oa.end - oa.pos != ob.end - ob.pos
            || ngx_memcmp(oa.pos, ob.pos, oa.end - oa.pos) != 0
            || !ngx_http_mdm_der_folded_eq(va.pos, va.end - va.pos, vb.pos,
                                           vb.end - vb.pos))
        {
            return 0;
        }
    }

    return p == na.end && q == nb.end;
}


/* an RDN of the plain shape: its attribute's OID and value */

static ngx_int_t
ngx_http_mdm_der_atv(u_char **p, u_char *end, ngx_http_mdm_der_t *oid,
    ngx_http_mdm_der_t *v)
{
    u_char              *q;
    ngx_http_mdm_der_t   rdn, atv;

    if (ngx_http_mdm_der_expect(p, end, 0x31, &rdn) != NGX_OK) {
        return NGX_DECLINED;
    }

    q = rdn.pos;

    if (ngx_http_mdm_der_expect(&q, rdn.end, 0x30, &atv) != NGX_OK) {
        return NGX_DECLINED;
    }

    q = atv.pos;

    if (ngx_http_mdm_der_expect(&q, atv.end, 0x06, oid) != NGX_OK
        || ngx_http_mdm_der(&q, atv.end, v) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* ASCII strings equal with case ignored and all spaces left out */

static ngx_uint_t
ngx_http_mdm_der_folded_eq(u_char *a, size_t alen, u_char *b, size_t blen)
{
    u_char  *ae, *be;

    ae = a + alen;
    be = b + blen;

    for ( ;; ) {
        while (a < ae && *a == ' ') {
            a++;
        }

        while (b < be && *b == ' ') {
            b++;
        }

        if (a == ae || b == be) {
            return a == ae && b == be;
        }

        if (ngx_tolower(*a) != ngx_tolower(*b)) {
            return 0;
        }

        a++;
        b++;
    }
}


/*
 * subjectAltName: GeneralNames of rfc822Name, dNSName or URI in printable
 * ASCII, and iPAddress; OpenSSL parses it (an unparsable one marks the
 * certificate invalid), and reads it only for name constraints, which
 * the prepared issuers have none of.
 */

static ngx_int_t
ngx_http_mdm_der_altnames(ngx_http_mdm_der_t *val)
{
    u_char              *p, *q;
    ngx_http_mdm_der_t   x, gn;

    p = val->pos;

    if (ngx_http_mdm_der_expect(&p, val->end, 0x30, &x) != NGX_OK
        || p != val->end || x.pos == x.end)
    {
        return NGX_DECLINED;
    }

    p = x.pos;

    while (p < x.end) {
        if (ngx_http_mdm_der(&p, x.end, &gn) != NGX_OK) {
            return NGX_DECLINED;
        }

        switch (gn.tag) {

        case 0x81: /* rfc822Name */
        case 0x82: /* dNSName */
        case 0x86: /* uniformResourceIdentifier */
            for (q = gn.pos; q < gn.end; q++) {
                if (*q < 0x20 || *q > 0x7e) {
                    return NGX_DECLINED;
                }
            }
            break;

        case 0x87: /* iPAddress */
            if (gn.end - gn.pos != 4 && gn.end - gn.pos != 16) {
                return NGX_DECLINED;
            }
            break;

        default:
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* an INTEGER's content: positive, minimal */

static ngx_int_t
ngx_http_mdm_der_int(ngx_http_mdm_der_t *e)
{
    if (e->end == e->pos || (e->pos[0] & 0x80)
        || (e->end - e->pos > 1 && e->pos[0] == 0 && !(e->pos[1] & 0x80)))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* an OID's content as OpenSSL reads it: no 0x80 leading a subidentifier */

static ngx_int_t
ngx_http_mdm_der_oid(ngx_http_mdm_der_t *e)
{
    u_char  *p;

    if (e->end == e->pos || (e->end[-1] & 0x80)) {
        return NGX_DECLINED;
    }

    for (p = e->pos; p < e->end; p++) {
        if (*p == 0x80 && (p == e->pos || !(p[-1] & 0x80))) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
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

time_t
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
