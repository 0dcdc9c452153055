
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
 * (see ngx_http_mdm_fastsig_der.c), with s filled; NGX_DECLINED otherwise.
 */
ngx_int_t ngx_http_mdm_fastsig_walk(ngx_str_t *der, ngx_http_mdm_signed_t *s);

/* the issuer, serial number and RSA modulus and exponent of s->cert */
ngx_int_t ngx_http_mdm_fastsig_cert(ngx_http_mdm_signed_t *s,
    ngx_http_mdm_der_t *issuer, ngx_http_mdm_der_t *serial,
    ngx_http_mdm_der_t *n, ngx_http_mdm_der_t *e);

/* a DER UTCTime or GeneralizedTime at p, as timegm() reads it; -1 if not */
time_t ngx_http_mdm_der_time(u_char *p, u_char *end);


#endif /* _NGX_HTTP_MDM_FASTSIG_DER_H_INCLUDED_ */
