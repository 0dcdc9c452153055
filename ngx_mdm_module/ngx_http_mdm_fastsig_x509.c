
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The strict DER read of a signer certificate at its first sight
 * (ngx_http_mdm_fastsig_chain.c): the certificate, its Names, validity and
 * extensions, and whether two Names could be the same for OpenSSL.  The
 * DER primitives are ngx_http_mdm_fastsig_der.c.
 */


#include "ngx_http_mdm_fastsig_der.h"


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
        || ngx_http_mdm_der_alg(&alg, &oid) != NGX_OK
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
    c->sig_nid = ngx_http_mdm_der_oid_nid(&oid);
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

    if (ngx_http_mdm_der_read(&q, v.end, &t) != NGX_OK) {
        return NGX_DECLINED;
    }

    c->not_before = ngx_http_mdm_der_time(t.start, t.end);

    if (c->not_before == (time_t) -1 || t.end - t.start > 17
        || ngx_http_mdm_der_read(&q, v.end, &t) != NGX_OK || q != v.end)
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
            || ngx_http_mdm_der_read(&q, atv.end, &v) != NGX_OK
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
            || ngx_http_mdm_der_read(&q, ext.end, &b) != NGX_OK)
        {
            return NGX_DECLINED;
        }

        critical = 0;

        if (b.tag == 0x01) {
            /* DER encodes FALSE by leaving the field out */
            if (b.end - b.pos != 1 || b.pos[0] != 0xff
                || ngx_http_mdm_der_read(&q, ext.end, &b) != NGX_OK)
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
        || ngx_http_mdm_der_read(&q, atv.end, v) != NGX_OK)
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
        if (ngx_http_mdm_der_read(&p, x.end, &gn) != NGX_OK) {
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
