
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_FASTSIG_CACHE_H_INCLUDED_
#define _NGX_HTTP_MDM_FASTSIG_CACHE_H_INCLUDED_


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_fastsig_der.h"

#include <openssl/evp.h>
#include <openssl/sha.h>


/* how long a cached chain verdict holds before it is checked again */
#define NGX_HTTP_MDM_FASTSIG_TTL   3600


/* a certificate that passed the full verification, with its key */
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


/* what a verdict knows of a certificate known good for a CA */
typedef struct {
    time_t             not_before;
    time_t             not_after;
    time_t             expires;      /* when the chain is checked again */
} ngx_http_mdm_fastsig_times_t;


/* size key entries and verdicts verdicts (0: none), per worker */
ngx_int_t ngx_http_mdm_fastsig_cache_init(ngx_cycle_t *cycle, ngx_uint_t size,
    ngx_uint_t verdicts);
void ngx_http_mdm_fastsig_cache_exit(void);

/* whether this worker has a cache */
ngx_uint_t ngx_http_mdm_fastsig_cached(void);

/* the entry with the key, or NULL */
ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_find(u_char *key);

/* the verdict on key for mlcf's CA, still good at now: NGX_OK and t */
ngx_int_t ngx_http_mdm_fastsig_verdict(ngx_http_mdm_loc_conf_t *mlcf,
    u_char *key, time_t now, ngx_http_mdm_fastsig_times_t *t);

/*
 * s->cert, whose DER has SHA-256 key, is known good for mlcf's CA with t:
 * a key entry, its RSA key rebuilt from the DER, and the verdict
 * remembered; NULL for anything unusual (the full path decides).
 */
ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_admit(
    ngx_http_mdm_loc_conf_t *mlcf, u_char *key, ngx_http_mdm_signed_t *s,
    ngx_http_mdm_fastsig_times_t *t);

/*
 * A certificate with a verdict for mlcf's CA but no key entry gets one
 * again (verdict, then admit); NULL when it has none.
 */
ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_promote(
    ngx_http_mdm_loc_conf_t *mlcf, u_char *key, ngx_http_mdm_signed_t *s,
    time_t now);


#endif /* _NGX_HTTP_MDM_FASTSIG_CACHE_H_INCLUDED_ */
