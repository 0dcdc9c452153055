
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the pieces of mdm_enroll share: the request context, and the
 * steps the thread-pool signing (ngx_http_mdm_enroll_sign.c) calls back.
 */


#ifndef _NGX_HTTP_MDM_ENROLL_PRIVATE_H_INCLUDED_
#define _NGX_HTTP_MDM_ENROLL_PRIVATE_H_INCLUDED_


#include "ngx_http_mdm_enroll.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


typedef struct {
    ngx_http_mdm_ctx_t          mdm;         /* first: what logs read */
    ngx_str_t                   challenge;

    /* signing in the thread pool: the profile, then its SignedData */
    ngx_http_request_t         *request;
    ngx_http_mdm_enroll_signer_t  *signer;
    ngx_str_t                   profile;
    u_char                     *der;         /* OPENSSL_malloc()ed */
    int                         der_len;
} ngx_http_mdm_enroll_ctx_t;


/* the profile to the device, as it is (InstallProfile) or signed */
ngx_int_t ngx_http_mdm_enroll_deliver(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *profile);

/* one log line and a JSON {"error": reason} with STATUS */
ngx_int_t ngx_http_mdm_enroll_error(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_uint_t status, const char *reason);

#if (NGX_THREADS)
/* sign ctx->profile in POOL, then deliver it (ngx_http_mdm_enroll_sign.c) */
ngx_int_t ngx_http_mdm_enroll_sign_post(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_thread_pool_t *pool);
#endif


#endif /* _NGX_HTTP_MDM_ENROLL_PRIVATE_H_INCLUDED_ */
