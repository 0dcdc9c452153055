
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_redis ... wait=N[,TIME]: a request gets its call's reply only once N
 * replicas have acknowledged the write; fewer within TIME answer 503, and
 * the device sends again (every script is safe to run twice).  Without it,
 * what the master acknowledged but had not yet replicated when it failed
 * is lost.
 *
 * WAIT blocks the connection it is sent on, and every call of this nginx
 * worker shares one connection: one WAIT per call would line the calls up
 * behind one another.  So the WAITs are a group commit: at most one is out
 * at a time, and it covers every call whose reply came before it was sent
 * (WAIT counts all earlier writes of the connection); the calls answered
 * meanwhile wait for the next one.  hiredis frees a reply when its callback
 * returns, so the held replies are copies in their requests' pools.
 */


#include "ngx_http_mdm_redis_private.h"


static void ngx_http_mdm_redis_wait_send(void);
static void ngx_http_mdm_redis_wait_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_mdm_redis_wait_fail(ngx_queue_t *q, const char *why);
static redisReply *ngx_http_mdm_redis_copy(ngx_pool_t *pool,
    redisReply *reply, ngx_uint_t depth);


void
ngx_http_mdm_redis_wait_init(void)
{
    ngx_queue_init(&ngx_http_mdm_redis.wait_next);
    ngx_queue_init(&ngx_http_mdm_redis.wait_sent);
    ngx_http_mdm_redis.wait_out = 0;
}


/* the call's reply came: kept until a WAIT sent after it answers */

ngx_int_t
ngx_http_mdm_redis_wait_hold(ngx_http_mdm_redis_op_t *op, redisReply *reply)
{
    op->held = ngx_http_mdm_redis_copy(op->request->pool, reply, 0);
    if (op->held == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&ngx_http_mdm_redis.wait_next, &op->wq);
    op->waiting = 1;

    if (!ngx_http_mdm_redis.wait_out) {
        ngx_http_mdm_redis_wait_send();
    }

    return NGX_OK;
}


/* the request is answered or gone: out of the queues */

void
ngx_http_mdm_redis_wait_forget(ngx_http_mdm_redis_op_t *op)
{
    if (op->waiting) {
        ngx_queue_remove(&op->wq);
        op->waiting = 0;
    }
}


static void
ngx_http_mdm_redis_wait_send(void)
{
    ngx_http_mdm_redis_t      *rd = &ngx_http_mdm_redis;
    ngx_http_mdm_main_conf_t  *mmcf = rd->conf;

    if (ngx_queue_empty(&rd->wait_next)) {
        return;
    }

    if (rd->ac == NULL
        || redisAsyncCommand(rd->ac, ngx_http_mdm_redis_wait_reply, NULL,
                             "WAIT %d %d", (int) mmcf->wait_replicas,
                             (int) mmcf->wait_timeout)
           != REDIS_OK)
    {
        ngx_http_mdm_redis_wait_fail(&rd->wait_next, "cannot send WAIT");
        return;
    }

    /* everything held so far is covered by this WAIT */
    ngx_queue_add(&rd->wait_sent, &rd->wait_next);
    ngx_queue_init(&rd->wait_next);
    rd->wait_out = 1;
}


static void
ngx_http_mdm_redis_wait_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                *reply = r;
    ngx_queue_t               *q, covered;
    ngx_http_mdm_redis_op_t   *op;
    ngx_http_mdm_redis_t      *rd = &ngx_http_mdm_redis;
    ngx_http_mdm_main_conf_t  *mmcf = rd->conf;

    static u_char  why[128];

    rd->wait_out = 0;

    if (rd->exiting) {
        ngx_http_mdm_redis_wait_init();
        return;
    }

    /* the covered calls leave the queue before their requests finish */
    ngx_queue_init(&covered);
    ngx_queue_add(&covered, &rd->wait_sent);
    ngx_queue_init(&rd->wait_sent);

    if (reply == NULL) {
        /* the connection is gone: so are the replies held behind it */
        ngx_http_mdm_redis_wait_fail(&covered, "connection lost before WAIT "
                                     "answered");
        ngx_http_mdm_redis_wait_fail(&rd->wait_next, "connection lost before "
                                     "WAIT answered");
        return;
    }

    if (reply->type == REDIS_REPLY_INTEGER
        && reply->integer >= (long long) mmcf->wait_replicas)
    {
        while (!ngx_queue_empty(&covered)) {
            q = ngx_queue_head(&covered);
            op = ngx_queue_data(q, ngx_http_mdm_redis_op_t, wq);
            ngx_http_mdm_redis_finish(op, op->held, NULL);
        }

    } else {
        if (reply->type == REDIS_REPLY_INTEGER) {
            ngx_snprintf(why, sizeof(why), "was acknowledged by %L of %ui "
                         "replicas within %M ms (wait=)%Z",
                         (int64_t) reply->integer, mmcf->wait_replicas,
                         mmcf->wait_timeout);

        } else {
            ngx_snprintf(why, sizeof(why), "refused WAIT: %*s%Z",
                         (size_t) ngx_min(reply->len, 80), reply->str);
        }

        ngx_http_mdm_redis_wait_fail(&covered, (char *) why);
    }

    if (rd->ac == ac && !rd->draining) {
        ngx_http_mdm_redis_wait_send();
    }
}


static void
ngx_http_mdm_redis_wait_fail(ngx_queue_t *q, const char *why)
{
    ngx_http_mdm_redis_op_t  *op;

    while (!ngx_queue_empty(q)) {
        op = ngx_queue_data(ngx_queue_head(q), ngx_http_mdm_redis_op_t, wq);

        /* finish() takes it out of the queue */
        ngx_http_mdm_redis_finish(op, NULL, why);
    }
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
