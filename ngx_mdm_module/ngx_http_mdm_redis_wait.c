
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_redis ... wait=N[,TIMEOUT]: every call is followed, on the same
 * connection, by "WAIT N TIMEOUT", and the request gets the call's reply
 * only once N replicas have acknowledged it; fewer answer 503, and the
 * device sends again (every script is safe to run twice).  Without it, what
 * the master acknowledged but had not yet replicated when it failed is lost.
 *
 * hiredis frees a reply when its callback returns, so the call's reply is
 * copied into the request's pool while the WAIT is out.
 */


#include "ngx_http_mdm_redis_private.h"


static void ngx_http_mdm_redis_wait_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static redisReply *ngx_http_mdm_redis_copy(ngx_pool_t *pool,
    redisReply *reply, ngx_uint_t depth);


ngx_int_t
ngx_http_mdm_redis_wait_send(ngx_http_mdm_redis_op_t *op)
{
    ngx_http_mdm_main_conf_t  *mmcf = ngx_http_mdm_redis.conf;

    if (redisAsyncCommand(ngx_http_mdm_redis.ac,
                          ngx_http_mdm_redis_wait_reply, op->ticket,
                          "WAIT %d %d", (int) mmcf->wait_replicas,
                          (int) mmcf->wait_timeout)
        != REDIS_OK)
    {
        return NGX_DECLINED;
    }

    op->ticket->refs++;

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_redis_wait_hold(ngx_http_mdm_redis_op_t *op, redisReply *reply)
{
    op->held = ngx_http_mdm_redis_copy(op->request->pool, reply, 0);

    return op->held ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_mdm_redis_wait_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                   *reply = r;
    ngx_http_mdm_redis_op_t      *op;
    ngx_http_mdm_redis_ticket_t  *t = privdata;
    ngx_http_mdm_main_conf_t     *mmcf = ngx_http_mdm_redis.conf;

    static u_char  why[128];

    op = t->op;

    /* the call failed and was answered already, or the request is gone */
    if (op == NULL || ngx_http_mdm_redis.exiting) {
        ngx_http_mdm_redis_release(t);
        return;
    }

    t->refs--;

    /*
     * No reply held: the call is being sent again (NOSCRIPT; the WAIT
     * behind the new EVAL counts), or the connection is gone before its
     * reply (the call's own callback answers)
     */
    if (op->held == NULL) {
        return;
    }

    if (reply == NULL) {
        ngx_http_mdm_redis_finish(op, NULL, "connection lost before WAIT "
                                  "answered");
        return;
    }

    if (reply->type == REDIS_REPLY_INTEGER
        && reply->integer >= (long long) mmcf->wait_replicas)
    {
        ngx_http_mdm_redis_finish(op, op->held, NULL);
        return;
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        ngx_snprintf(why, sizeof(why), "was acknowledged by %L of %ui "
                     "replicas within %M ms (wait=)%Z",
                     (int64_t) reply->integer, mmcf->wait_replicas,
                     mmcf->wait_timeout);

    } else {
        ngx_snprintf(why, sizeof(why), "refused WAIT: %*s%Z",
                     (size_t) ngx_min(reply->len, 80), reply->str);
    }

    ngx_http_mdm_redis_finish(op, NULL, (char *) why);
}


/* the fields the module reads: type, integer, str and len, elements */

static redisReply *
ngx_http_mdm_redis_copy(ngx_pool_t *pool, redisReply *reply, ngx_uint_t depth)
{
    size_t       i;
    redisReply  *c;

    /* script replies are shallow; a deep one is not ours */
    if (depth > 8) {
        return NULL;
    }

    c = ngx_pcalloc(pool, sizeof(redisReply));
    if (c == NULL) {
        return NULL;
    }

    c->type = reply->type;
    c->integer = reply->integer;

    if (reply->str) {
        c->str = ngx_pnalloc(pool, reply->len + 1);
        if (c->str == NULL) {
            return NULL;
        }

        ngx_memcpy(c->str, reply->str, reply->len);
        c->str[reply->len] = '\0';
        c->len = reply->len;
    }

    if (reply->elements) {
        c->element = ngx_palloc(pool, reply->elements * sizeof(redisReply *));
        if (c->element == NULL) {
            return NULL;
        }

        for (i = 0; i < reply->elements; i++) {
            c->element[i] = ngx_http_mdm_redis_copy(pool, reply->element[i],
                                                    depth + 1);
            if (c->element[i] == NULL) {
                return NULL;
            }
        }

        c->elements = reply->elements;
    }

    return c;
}
