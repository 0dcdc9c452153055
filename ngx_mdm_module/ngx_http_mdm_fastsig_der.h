
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_FASTSIG_DER_H_INCLUDED_
#define _NGX_HTTP_MDM_FASTSIG_DER_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* a DER element: tag, then the bounds of its content */
typedef struct {
    u_int              tag;
    u_char            *start;        /* the tag byte */
    u_char            *pos;          /* the content */
    u_char            *end;
} ngx_http_mdm_der_t;


/* what the walk found in an Mdm-Signature, pointing into its DER */
typedef struct {
    u_char            *cert;         /* the certificate's whole DER */
    size_t             cert_len;
    u_char            *issuer;
    size_t             issuer_len;
    u_char            *serial;
    size_t             serial_len;
    int                md_nid;       /* SHA-256, -384, -512 or SHA-1 */
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


/* the OIDs the walk knows, taken from OpenSSL's table once per worker */
ngx_int_t ngx_http_mdm_der_init(void);

/*
 * NGX_OK when der is a detached SignedData of the plain shape devices send
 * (see ngx_http_mdm_fastsig_cms.c), with s filled; NGX_DECLINED otherwise.
 */
ngx_int_t ngx_http_mdm_fastsig_walk(ngx_str_t *der, ngx_http_mdm_signed_t *s);

/* the issuer, serial number and RSA modulus and exponent of s->cert */
ngx_int_t ngx_http_mdm_fastsig_cert(ngx_http_mdm_signed_t *s,
    ngx_http_mdm_der_t *issuer, ngx_http_mdm_der_t *serial,
    ngx_http_mdm_der_t *n, ngx_http_mdm_der_t *e);

/* what the first sight needs of a signer certificate, pointing into it */
typedef struct {
    u_char            *tbs;          /* TBSCertificate, tag included */
    size_t             tbs_len;
    u_char            *issuer;       /* Name, tag included */
    size_t             issuer_len;
    u_char            *subject;
    size_t             subject_len;
    time_t             not_before;
    time_t             not_after;
    u_char            *sig_alg;      /* AlgorithmIdentifier, tag included */
    size_t             sig_alg_len;
    int                sig_nid;
    ngx_uint_t         sig_params;   /* a NULL after the OID */
    u_char            *sig;          /* the signature, unused-bits byte 0 */
    size_t             sig_len;
    u_char            *akid;         /* authorityKeyIdentifier keyIdentifier */
    size_t             akid_len;
    ngx_uint_t         key_usage;    /* the first two bytes; 0: none */
    unsigned           has_key_usage:1;
    unsigned           has_ext_key_usage:1;
    unsigned           client_auth:1;  /* id-kp-clientAuth in the EKU */
} ngx_http_mdm_der_cert_t;


/*
 * NGX_OK when s->cert is a v3 certificate in strict DER of the plain shape
 * device certificates have (see ngx_http_mdm_fastsig_x509.c), with c
 * filled; NGX_DECLINED for anything else.
 */
ngx_int_t ngx_http_mdm_der_cert(ngx_http_mdm_signed_t *s,
    ngx_http_mdm_der_cert_t *c);

/* 0 when the Names a and b (DER, tag included) surely differ for OpenSSL */
ngx_uint_t ngx_http_mdm_der_name_like(u_char *a, size_t alen, u_char *b,
    size_t blen);

/* a DER UTCTime or GeneralizedTime at p, as timegm() reads it; -1 if not */
time_t ngx_http_mdm_der_time(u_char *p, u_char *end);

/*
 * The DER primitives the two walks share (ngx_http_mdm_fastsig_der.c):
 * NGX_OK or NGX_DECLINED, no allocation.
 */

/* one element with a definite length inside [*p, end); *p moves past it */
ngx_int_t ngx_http_mdm_der_read(u_char **p, u_char *end,
    ngx_http_mdm_der_t *e);
/* the same, with the tag tag */
ngx_int_t ngx_http_mdm_der_expect(u_char **p, u_char *end, u_int tag,
    ngx_http_mdm_der_t *e);
/* AlgorithmIdentifier { OID, NULL or nothing }, and nothing else */
ngx_int_t ngx_http_mdm_der_alg(ngx_http_mdm_der_t *alg,
    ngx_http_mdm_der_t *oid);
/* which of the OIDs the walks know e is; NID_undef if none */
int ngx_http_mdm_der_oid_nid(ngx_http_mdm_der_t *e);
ngx_int_t ngx_http_mdm_der_oid_is(ngx_http_mdm_der_t *e, int nid);
/* an INTEGER's content: positive, minimal */
ngx_int_t ngx_http_mdm_der_int(ngx_http_mdm_der_t *e);
/* an OID's content as OpenSSL reads it */
ngx_int_t ngx_http_mdm_der_oid(ngx_http_mdm_der_t *e);


#endif /* _NGX_HTTP_MDM_FASTSIG_DER_H_INCLUDED_ */
