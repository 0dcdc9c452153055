
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_enroll: signing the profile in the thread pool (mdm_enroll_sign,
 * mdm_enroll_thread_pool), then delivering it from the event loop.
 */


#include "ngx_http_mdm_enroll_private.h"
#include "ngx_http_mdm_util.h"

#include <openssl/crypto.h>


#if (NGX_THREADS)

/*
 * One RSA signature per profile, off the event loop: the request is
 * "blocked" meanwhile, so nginx does not free it under the thread; the
 * thread touches nothing but ctx's bytes and the signer.
 */

static void ngx_http_mdm_enroll_sign_thread(void *data, ngx_log_t *log);
static void ngx_http_mdm_enroll_sign_done(ngx_event_t *ev);
static void ngx_http_mdm_enroll_der_cleanup(void *data);


ngx_int_t
ngx_http_mdm_enroll_sign_post(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_thread_pool_t *pool)
{
    ngx_thread_task_t         *task;
    ngx_pool_cleanup_t        *cln;
    ngx_http_mdm_loc_conf_t   *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    task = ngx_thread_task_alloc(r->pool, 0);
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (task == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the DER is freed with the request, whatever becomes of it */
    cln->handler = ngx_http_mdm_enroll_der_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->signer = mlcf->enroll.signer;

    task->ctx = ctx;
    task->handler = ngx_http_mdm_enroll_sign_thread;
    task->event.data = ctx;
    task->event.handler = ngx_http_mdm_enroll_sign_done;

    if (ngx_thread_task_post(pool, task) != NGX_OK) {
        /* the pool's queue is full: nginx logged it */
        return ngx_http_mdm_enroll_error(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "the thread pool's queue is full");
    }

    r->main->blocked++;

    return NGX_DONE;
}


static void
ngx_http_mdm_enroll_sign_thread(void *data, ngx_log_t *log)
{
    ngx_http_mdm_enroll_ctx_t  *ctx = data;

    ctx->der_len = ngx_http_mdm_enroll_sign_der(ctx->signer,
                                                ctx->profile.data,
                                                ctx->profile.len, &ctx->der);

    /* OpenSSL's per-thread state: the error queue and the rest */
    ngx_http_mdm_thread_task_end();
}


static void
ngx_http_mdm_enroll_sign_done(ngx_event_t *ev)
{
    ngx_int_t                   rc;
    ngx_str_t                   signed_profile;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_mdm_enroll_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;

    if (c->error) {
        /* the client left meanwhile: nginx waits to finalize it */
        r->write_event_handler(r);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (ctx->der_len < 0) {
        rc = ngx_http_mdm_enroll_error(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       "signing the profile failed "
                                       "(mdm_enroll_sign)");

    } else {
        signed_profile.data = ctx->der;
        signed_profile.len = ctx->der_len;

        rc = ngx_http_mdm_enroll_deliver(r, ctx, &signed_profile);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_mdm_enroll_der_cleanup(void *data)
{
    ngx_http_mdm_enroll_ctx_t  *ctx = data;

    OPENSSL_free(ctx->der);
    ctx->der = NULL;
}

#endif
