
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The calls requests make on the worker's Redis connection: EVALSHA (EVAL
 * after NOSCRIPT) written in one pass, the reply handed back to the
 * request, timeouts, and the tickets that outlive a finished request.
 */


#include "ngx_http_mdm_redis_private.h"
#include "ngx_http_mdm_metrics.h"


/*
 * Released tickets are kept for the next requests, so that a device request
 * costs no heap allocation of ours; the list is bounded, and what is beyond
 * it is freed.
 */
#define NGX_HTTP_MDM_REDIS_FREE_TICKETS  1024

/* the command buffer kept between calls, enough for every check-in */
#define NGX_HTTP_MDM_REDIS_BUFFER_KEEP   65536


static void ngx_http_mdm_redis_drain(redisAsyncContext *ac,
    redisReply *reply);
static const char *ngx_http_mdm_redis_word(redisReply *reply);
static const char *ngx_http_mdm_redis_busy(redisReply *reply);
static ngx_int_t ngx_http_mdm_redis_send(ngx_http_mdm_redis_op_t *op);
static void ngx_http_mdm_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_http_mdm_redis_op_timeout(ngx_event_t *ev);
static void ngx_http_mdm_redis_op_cleanup(void *data);
static ngx_http_mdm_redis_ticket_t *ngx_http_mdm_redis_ticket(ngx_log_t *log);
static u_char *ngx_http_mdm_redis_buffer(size_t len);
static void ngx_http_mdm_redis_buffer_done(void);


/* calls from requests */

ngx_int_t
ngx_http_mdm_redis_eval(ngx_http_request_t *r, ngx_uint_t script,
    ngx_uint_t nkeys, ngx_array_t *args, ngx_http_mdm_redis_done_pt done)
{
    int                           i;
    ngx_int_t                     rc;
    ngx_str_t                    *a;
    ngx_uint_t                    n;
    ngx_pool_cleanup_t           *cln;
    ngx_http_mdm_redis_op_t      *op;
    ngx_http_mdm_redis_ticket_t  *t;

    if (ngx_http_mdm_redis.ac == NULL || ngx_http_mdm_redis.draining) {
        return NGX_DECLINED;
    }

    op = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_redis_op_t));
    if (op == NULL) {
        return NGX_ERROR;
    }

    n = args->nelts;
    a = args->elts;

    op->argc = (int) n + 3;
    op->argv = ngx_palloc(r->pool, op->argc * sizeof(char *));
    op->argvlen = ngx_palloc(r->pool, op->argc * sizeof(size_t));
    if (op->argv == NULL || op->argvlen == NULL) {
        return NGX_ERROR;
    }

    /* argv[0] and argv[1] are set by ngx_http_mdm_redis_send() */
    op->argv[2] = (char *) ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (op->argv[2] == NULL) {
        return NGX_ERROR;
    }
    op->argvlen[2] = ngx_sprintf((u_char *) op->argv[2], "%ui", nkeys)
                     - (u_char *) op->argv[2];

    for (i = 0; i < (int) n; i++) {
        op->argv[i + 3] = (const char *) a[i].data;
        op->argvlen[i + 3] = a[i].len;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    t = ngx_http_mdm_redis_ticket(r->connection->log);
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->op = op;
    t->refs = 1;            /* the request's; hiredis's is added on send */

    op->request = r;
    op->started = ngx_current_msec;
    op->done = done;
    op->ticket = t;
    op->script = script;

    op->timer.handler = ngx_http_mdm_redis_op_timeout;
    op->timer.data = r->connection;
    op->timer.log = r->connection->log;

    cln->handler = ngx_http_mdm_redis_op_cleanup;
    cln->data = op;

    rc = ngx_http_mdm_redis_send(op);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_add_timer(&op->timer, ngx_http_mdm_redis.conf->timeout);

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_redis_send(ngx_http_mdm_redis_op_t *op)
{
    int                     rc;
    u_char                 *cmd, *p;
    size_t                  len;
    ngx_int_t               i;
    ngx_http_mdm_script_t  *s;

    if (ngx_http_mdm_redis.ac == NULL) {
        return NGX_DECLINED;
    }

    s = ngx_http_mdm_script(op->script);

    if (op->retried) {
        op->argv[0] = "EVAL";
        op->argv[1] = s->source;
        op->argvlen[1] = s->len;

    } else {
        op->argv[0] = "EVALSHA";
        op->argv[1] = (const char *) s->sha1;
        op->argvlen[1] = 40;
    }

    op->argvlen[0] = ngx_strlen(op->argv[0]);

    /*
     * The protocol is written here in one pass, into a buffer the worker
     * reuses (hiredis copies what it is given): hiredis's own formatting
     * builds it argument by argument with allocations, a tenth of a device
     * request's time.
     */

    len = sizeof("*\r\n") - 1 + NGX_INT_T_LEN;

    for (i = 0; i < op->argc; i++) {
        len += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN + op->argvlen[i];
    }

    cmd = ngx_http_mdm_redis_buffer(len);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(cmd, "*%i\r\n", (ngx_int_t) op->argc);

    for (i = 0; i < op->argc; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", op->argvlen[i]);

        /* an empty argument may have no data at all */
        if (op->argvlen[i]) {
            p = ngx_cpymem(p, op->argv[i], op->argvlen[i]);
        }

        *p++ = '\r';
        *p++ = '\n';
    }

    rc = redisAsyncFormattedCommand(ngx_http_mdm_redis.ac,
                                    ngx_http_mdm_redis_reply, op->ticket,
                                    (const char *) cmd, p - cmd);

    ngx_http_mdm_redis_buffer_done();

    if (rc != REDIS_OK) {
        return NGX_DECLINED;
    }

    op->ticket->refs++;

    return NGX_OK;
}


/* the worker's command buffer, at least len bytes */

static u_char *
ngx_http_mdm_redis_buffer(size_t len)
{
    if (ngx_http_mdm_redis.buf_size < len) {
        ngx_free(ngx_http_mdm_redis.buf);

        ngx_http_mdm_redis.buf_size = ngx_max(len, 4096);
        ngx_http_mdm_redis.buf = ngx_alloc(ngx_http_mdm_redis.buf_size,
                                           ngx_http_mdm_redis.log);

        if (ngx_http_mdm_redis.buf == NULL) {
            ngx_http_mdm_redis.buf_size = 0;
        }
    }

    return ngx_http_mdm_redis.buf;
}


/* a buffer grown for a large command report is not kept */

static void
ngx_http_mdm_redis_buffer_done(void)
{
    if (ngx_http_mdm_redis.buf_size > NGX_HTTP_MDM_REDIS_BUFFER_KEEP) {
        ngx_free(ngx_http_mdm_redis.buf);
        ngx_http_mdm_redis.buf = NULL;
        ngx_http_mdm_redis.buf_size = 0;
    }
}


static void
ngx_http_mdm_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    const char                   *err;
    redisReply                   *reply = r;
    ngx_http_mdm_redis_op_t      *op;
    ngx_http_mdm_redis_ticket_t  *t = privdata;

    op = t->op;

    if (op == NULL || ngx_http_mdm_redis.exiting) {
        ngx_http_mdm_redis_release(t);
        return;
    }

    if (reply == NULL || ngx_http_mdm_redis.setup_failed) {
        t->refs--;
        ngx_http_mdm_redis_finish(op, NULL,
                                  ngx_http_mdm_redis.setup_failed
                                  ? "cannot serve (see the log)"
                                  : ac->errstr[0] ? ac->errstr
                                                  : "connection lost");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_http_mdm_redis_failover(reply))
    {
        t->refs--;
        ngx_http_mdm_redis_drain(ac, reply);
        ngx_http_mdm_redis_finish(op, NULL, ngx_http_mdm_redis_word(reply));
        return;
    }

    /* the server restarted or was flushed since the script was loaded */

    if (reply->type == REDIS_REPLY_ERROR && !op->retried
        && reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        t->refs--;
        op->retried = 1;

        if (ngx_http_mdm_redis_send(op) != NGX_OK) {
            ngx_http_mdm_redis_finish(op, NULL, ngx_http_mdm_redis.ac
                                                ? "out of memory"
                                                : "connection lost");
        }

        return;
    }

    t->refs--;

    if (reply->type == REDIS_REPLY_ERROR
        && (err = ngx_http_mdm_redis_busy(reply)) != NULL)
    {
        ngx_http_mdm_redis_finish(op, NULL, err);
        return;
    }

    if (ngx_http_mdm_redis.conf->wait_replicas
        && reply->type != REDIS_REPLY_ERROR)
    {
        /* kept until the WAIT behind it answers */
        if (ngx_http_mdm_redis_wait_hold(op, reply) != NGX_OK) {
            ngx_http_mdm_redis_finish(op, NULL, "out of memory");
        }

        return;
    }

    ngx_http_mdm_redis_finish(op, reply, NULL);
}


/*
 * Errors that say the server cannot take the call now, not that the call
 * is wrong: a full server under noeviction (OOM) or one stuck in a long
 * script (BUSY).  Answered 503, the connection kept.  Redis before 7 wraps
 * a script's failed call in ERR.
 */

static const char *
ngx_http_mdm_redis_busy(redisReply *reply)
{
    u_char  *p, *last;

    p = (u_char *) reply->str;
    last = p + reply->len;

    if ((reply->len >= 4 && ngx_strncmp(p, "OOM ", 4) == 0)
        || ngx_strlcasestrn(p, last, (u_char *) "-OOM ", 5 - 1) != NULL)
    {
        return "is out of memory (OOM; maxmemory-policy noeviction)";
    }

    if (reply->len >= 5 && ngx_strncmp(p, "BUSY ", 5) == 0) {
        return "is busy running a script (BUSY)";
    }

    return NULL;
}


/* a failover reply: no new calls on this connection, then reconnect */

static void
ngx_http_mdm_redis_drain(redisAsyncContext *ac, redisReply *reply)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (rd->draining) {
        return;
    }

    rd->draining = 1;

    if (!rd->down_logged) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "mdm: redis at \"%V\" answered \"%*s\": dropping "
                      "the connection, reconnecting",
                      ngx_http_mdm_redis_shown(),
                      (size_t) ngx_min(reply->len, 200), reply->str);
        rd->down_logged = 1;
    }

    /* hiredis closes it once the replies already on their way are read */
    redisAsyncDisconnect(ac);
}


/* what a request's log line says of a failover reply */

static const char *
ngx_http_mdm_redis_word(redisReply *reply)
{
    if (reply->len >= 7 && ngx_strncmp(reply->str, "LOADING", 7) == 0) {
        return "is loading its dataset (LOADING)";
    }

    if (reply->len >= 10 && ngx_strncmp(reply->str, "MASTERDOWN", 10) == 0) {
        return "lost its primary (MASTERDOWN)";
    }

    return "is read-only (READONLY)";
}


void
ngx_http_mdm_redis_finish(ngx_http_mdm_redis_op_t *op, redisReply *reply,
    const char *err)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_log_ctx_t  *lctx;

    r = op->request;
    c = r->connection;

    op->ticket->op = NULL;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    ngx_http_mdm_redis_wait_forget(op);

    ngx_http_mdm_metrics_redis_call(op->started, reply == NULL);

    lctx = c->log->data;
    lctx->current_request = r;

    op->done(r, reply, err);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_mdm_redis_op_timeout(ngx_event_t *ev)
{
    ngx_http_mdm_redis_op_t  *op;

    op = (ngx_http_mdm_redis_op_t *)
             ((u_char *) ev - offsetof(ngx_http_mdm_redis_op_t, timer));

    ngx_http_mdm_redis_finish(op, NULL, "timed out");

    /*
     * A server that does not answer within the timeout is treated as gone:
     * fail everything pending now and reconnect, rather than let every
     * following request wait for the same timeout.
     */
    ngx_http_mdm_redis_drop("a call timed out");
}


static void
ngx_http_mdm_redis_op_cleanup(void *data)
{
    ngx_http_mdm_redis_op_t  *op = data;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    ngx_http_mdm_redis_wait_forget(op);

    op->ticket->op = NULL;
    ngx_http_mdm_redis_release(op->ticket);
}


static ngx_http_mdm_redis_ticket_t *
ngx_http_mdm_redis_ticket(ngx_log_t *log)
{
    ngx_http_mdm_redis_ticket_t  *t;

    t = ngx_http_mdm_redis.free_tickets;

    if (t) {
        ngx_http_mdm_redis.free_tickets = t->next;
        ngx_http_mdm_redis.nfree_tickets--;
        return t;
    }

    return ngx_alloc(sizeof(ngx_http_mdm_redis_ticket_t), log);
}


void
ngx_http_mdm_redis_release(ngx_http_mdm_redis_ticket_t *t)
{
    if (--t->refs) {
        return;
    }

    if (ngx_http_mdm_redis.exiting
        || ngx_http_mdm_redis.nfree_tickets >= NGX_HTTP_MDM_REDIS_FREE_TICKETS)
    {
        ngx_free(t);
        return;
    }

    t->next = ngx_http_mdm_redis.free_tickets;
    ngx_http_mdm_redis.free_tickets = t;
    ngx_http_mdm_redis.nfree_tickets++;
}


/* at exit: the kept buffer and tickets */

void
ngx_http_mdm_redis_calls_free(void)
{
    ngx_http_mdm_redis_ticket_t  *t;

    ngx_free(ngx_http_mdm_redis.buf);
    ngx_http_mdm_redis.buf = NULL;
    ngx_http_mdm_redis.buf_size = 0;

    while (ngx_http_mdm_redis.free_tickets) {
        t = ngx_http_mdm_redis.free_tickets;
        ngx_http_mdm_redis.free_tickets = t->next;
        ngx_free(t);
    }

    ngx_http_mdm_redis.nfree_tickets = 0;
}
