/*
 * Copyright (C) ngx_mdm contributors
 *
 * hiredis connections on the libev loop, with AUTH/SELECT and reconnects
 * with backoff.  Calls made while a connection is down fail at once; their
 * callers keep their work in Redis and try again.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libev.h>

#include "mdm_worker.h"


#define MW_BACKOFF_MIN  0.1
#define MW_BACKOFF_MAX  5.0


static void mw_redis_connect(mw_redis_t *r);
static void mw_redis_retry(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_redis_lost(mw_redis_t *r, const char *why);
static void mw_redis_on_connect(const redisAsyncContext *ac, int status);
static void mw_redis_on_disconnect(const redisAsyncContext *ac, int status);
static void mw_redis_setup_reply(redisAsyncContext *ac, void *reply,
    void *data);


void
mw_redis_start(mw_ctx_t *ctx, mw_redis_t *r, const char *name,
    void (*on_ready)(mw_redis_t *r))
{
    memset(r, 0, sizeof(mw_redis_t));

    r->ctx = ctx;
    r->name = name;
    r->on_ready = on_ready;
    r->backoff = MW_BACKOFF_MIN;

    ev_timer_init(&r->retry, mw_redis_retry, 0., 0.);
    r->retry.data = r;

    mw_redis_connect(r);
}


void
mw_redis_stop(mw_redis_t *r)
{
    redisAsyncContext  *ac = r->ac;

    if (r->ctx == NULL) {
        /* never started */
        return;
    }

    ev_timer_stop(r->ctx->loop, &r->retry);

    if (ac) {
        r->ac = NULL;
        r->ready = 0;
        ac->onDisconnect = NULL;
        redisAsyncFree(ac);
    }
}


static void
mw_redis_connect(mw_redis_t *r)
{
    const char         *addr = r->ctx->conf.redis;
    char                host[256];
    const char         *colon;
    redisAsyncContext  *ac;

    if (strncmp(addr, "unix:", 5) == 0) {
        ac = redisAsyncConnectUnix(addr + 5);

    } else {
        colon = strrchr(addr, ':');
        snprintf(host, sizeof(host), "%.*s",
                 (int) (colon ? (size_t) (colon - addr) : strlen(addr)), addr);
        ac = redisAsyncConnect(host, colon ? atoi(colon + 1) : 6379);
    }

    if (ac == NULL || ac->err) {
        mw_redis_lost(r, ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        return;
    }

    ac->data = r;
    r->ac = ac;

    redisLibevAttach(r->ctx->loop, ac);
    redisAsyncSetConnectCallback(ac, mw_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, mw_redis_on_disconnect);

    if (r->ctx->conf.redis_password && r->ctx->conf.redis_password[0]) {
        redisAsyncCommand(ac, mw_redis_setup_reply, "AUTH", "AUTH %s",
                          r->ctx->conf.redis_password);
    }

    redisAsyncCommand(ac, mw_redis_setup_reply, "SELECT", "SELECT %d",
                      r->ctx->conf.redis_db);
}


static void
mw_redis_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_redis_t  *r = t->data;

    (void) loop;
    (void) revents;

    if (r->ac == NULL && !r->ctx->stopping) {
        mw_redis_connect(r);
    }
}


static void
mw_redis_lost(mw_redis_t *r, const char *why)
{
    if (r->ready || r->backoff == MW_BACKOFF_MIN) {
        mw_log("error", "redis %s (%s): %s, reconnecting", r->ctx->conf.redis,
               r->name, why);
    }

    r->ac = NULL;
    r->ready = 0;

    if (r->ctx->stopping) {
        return;
    }

    ev_timer_stop(r->ctx->loop, &r->retry);
    ev_timer_set(&r->retry, r->backoff, 0.);
    ev_timer_start(r->ctx->loop, &r->retry);

    r->backoff *= 2;
    if (r->backoff > MW_BACKOFF_MAX) {
        r->backoff = MW_BACKOFF_MAX;
    }
}


static void
mw_redis_on_connect(const redisAsyncContext *ac, int status)
{
    mw_redis_t  *r = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this */
        mw_redis_lost(r, ac->errstr);
    }
}


static void
mw_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    mw_redis_t  *r = ac->data;

    mw_redis_lost(r, status == REDIS_OK ? "disconnected" : ac->errstr);
}


/* SELECT is always the last setup command: its OK means ready */

static void
mw_redis_setup_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *rep = reply;
    mw_redis_t  *r = ac->data;

    if (rep == NULL) {
        return;
    }

    if (rep->type == REDIS_REPLY_ERROR) {
        mw_log("error", "redis %s failed: %s", (char *) data, rep->str);
        redisAsyncDisconnect(ac);
        return;
    }

    if (strcmp(data, "SELECT") != 0) {
        return;
    }

    if (r->backoff > MW_BACKOFF_MIN) {
        mw_log("notice", "redis %s (%s) is back", r->ctx->conf.redis, r->name);
    }

    r->backoff = MW_BACKOFF_MIN;
    r->ready = 1;

    if (r->on_ready) {
        r->on_ready(r);
    }
}


int
mw_redis_command(mw_redis_t *r, redisCallbackFn *cb, void *data,
    const char *fmt, ...)
{
    int      rc;
    va_list  ap;

    if (!r->ready) {
        return -1;
    }

    va_start(ap, fmt);
    rc = redisvAsyncCommand(r->ac, cb, data, fmt, ap);
    va_end(ap);

    return rc == REDIS_OK ? 0 : -1;
}


int
mw_redis_argv(mw_redis_t *r, redisCallbackFn *cb, void *data, int argc,
    const char **argv, const size_t *lens)
{
    if (!r->ready) {
        return -1;
    }

    return redisAsyncCommandArgv(r->ac, cb, data, argc, argv, lens)
           == REDIS_OK ? 0 : -1;
}
