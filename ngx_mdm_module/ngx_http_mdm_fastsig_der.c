
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The DER primitives of the Mdm-Signature fast path, shared by the walk
 * of the SignedData (ngx_http_mdm_fastsig_cms.c) and of the signer
 * certificate (ngx_http_mdm_fastsig_x509.c): one element with a definite
 * length, the OIDs the walks know, AlgorithmIdentifier, INTEGER and OID
 * content checks, and the two DER times.  No allocation, no OpenSSL
 * decoder.
 */


#include "ngx_http_mdm_fastsig_der.h"

#include <openssl/objects.h>


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


/* AlgorithmIdentifier { OID, NULL or nothing }, and nothing else */

ngx_int_t
ngx_http_mdm_der_alg(ngx_http_mdm_der_t *alg, ngx_http_mdm_der_t *oid)
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


/* an INTEGER's content: positive, minimal */

ngx_int_t
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

ngx_int_t
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

ngx_int_t
ngx_http_mdm_der_read(u_char **p, u_char *end, ngx_http_mdm_der_t *e)
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


ngx_int_t
ngx_http_mdm_der_expect(u_char **p, u_char *end, u_int tag,
    ngx_http_mdm_der_t *e)
{
    if (ngx_http_mdm_der_read(p, end, e) != NGX_OK || e->tag != tag) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* which of the OIDs the walk knows e is */

int
ngx_http_mdm_der_oid_nid(ngx_http_mdm_der_t *e)
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


ngx_int_t
ngx_http_mdm_der_oid_is(ngx_http_mdm_der_t *e, int nid)
{
    return (ngx_http_mdm_der_oid_nid(e) == nid) ? NGX_OK : NGX_DECLINED;
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
