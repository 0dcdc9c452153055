
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The DER walk of the Mdm-Signature fast path: no allocation, no OpenSSL
 * decoder.  It accepts only the plain shape devices send: definite
 * lengths, one certificate, one signer identified by issuer and serial,
 * DER-ordered signed attributes with contentType id-data and a
 * messageDigest, an RSA PKCS#1 v1.5 or ECDSA signature.  Anything else is
 * NGX_DECLINED, and the full path decides.
 *
 * This file walks the SignedData, its signer and signed attributes, and
 * reads what the verify needs of the signer certificate (issuer, serial,
 * RSA key); the DER primitives are ngx_http_mdm_fastsig_der.c, the strict
 * read of the certificate at first sight ngx_http_mdm_fastsig_x509.c.
 */


#include "ngx_http_mdm_fastsig_der.h"

#include <openssl/objects.h>


static ngx_int_t ngx_http_mdm_fastsig_signer(u_char *p, u_char *end,
    ngx_http_mdm_signed_t *s);
static ngx_int_t ngx_http_mdm_fastsig_attrs(u_char *p, u_char *end,
    ngx_http_mdm_signed_t *s);


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
        || ngx_http_mdm_der_oid_is(&oid, NID_pkcs7_signed) != NGX_OK
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
        || ngx_http_mdm_der_oid_is(&oid, NID_pkcs7_data) != NGX_OK
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
        || ngx_http_mdm_der_alg(&alg, &oid) != NGX_OK
        || (size_t) (s->digest_algs.end - s->digest_algs.pos)
           != (size_t) (alg.end - alg.start)
        || ngx_memcmp(s->digest_algs.pos, alg.start, alg.end - alg.start)
           != 0)
    {
        return NGX_DECLINED;
    }

    s->md_nid = ngx_http_mdm_der_oid_nid(&oid);

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
        || ngx_http_mdm_der_alg(&alg, &oid) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    s->sig_nid = ngx_http_mdm_der_oid_nid(&oid);

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
        if (ngx_http_mdm_der_read(&q, set.end, &v) != NGX_OK || q != set.end) {
            /* none, or several values */
            return NGX_DECLINED;
        }

        switch (ngx_http_mdm_der_oid_nid(&oid)) {

        case NID_pkcs9_contentType:
            if (content_type || v.tag != 0x06
                || ngx_http_mdm_der_oid_is(&v, NID_pkcs7_data) != NGX_OK)
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
        || ngx_http_mdm_der_alg(&alg, &oid) != NGX_OK
        || alg.end - oid.end != 2
        || ngx_http_mdm_der_oid_nid(&oid) != NID_rsaEncryption
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
