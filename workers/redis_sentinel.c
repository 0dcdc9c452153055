/*
 * Copyright (C) ngx_mdm contributors
 *
 * Redis Sentinel for mdm-worker's connections: before each connect, the
 * sentinels of redis_sentinels are asked, in turn, where redis_master is
 * now (SENTINEL get-master-addr-by-name), on the event loop like every
 * other call.  A failover needs nothing more: the old master's connection
 * is lost, times out or answers READONLY, is dropped (redis.c), and the
 * reconnect asks again; ROLE at setup refuses a replica a sentinel still
 * names.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libev.h>

#include "mdm_worker.h"


static void mw_sentinel_next(mw_redis_t *r);
static int mw_sentinel_addr(const char *list, unsigned i, char *host,
    size_t size, int *port);
static unsigned mw_sentinel_count(const char *list);
static void mw_sentinel_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_sentinel_on_connect(const redisAsyncContext *ac, int status);
static void mw_sentinel_on_disconnect(const redisAsyncContext *ac,
    int status);
static void mw_sentinel_timeout(struct ev_loop *loop, ev_timer *t,
    int revents);
static void mw_sentinel_failed(mw_redis_t *r);


/* a round over all sentinels, from the one that answered last */

void
mw_redis_sentinel_ask(mw_redis_t *r)
{
    r->sentinel_tries = 0;

    mw_sentinel_next(r);
}


static void
mw_sentinel_next(mw_redis_t *r)
{
    int                 port;
    char                host[256];
    unsigned            n;
    const char         *pw;
    mw_conf_t          *conf = &r->ctx->conf;
    redisAsyncContext  *ac;

    n = mw_sentinel_count(conf->redis_sentinels);

    while (r->sentinel_tries < n) {
        r->sentinel_tries++;

        if (mw_sentinel_addr(conf->redis_sentinels, r->sentinel_next % n,
                             host, sizeof(host), &port) != 0)
        {
            r->sentinel_next++;
            continue;
        }

        ac = redisAsyncConnect(host, port);

        if (ac == NULL || ac->err) {
            mw_log("warn", "redis sentinel %s:%d: %s", host, port,
                   ac ? ac->errstr : "out of memory");
            if (ac) {
                redisAsyncFree(ac);
            }
            r->sentinel_next++;
            continue;
        }

        ac->data = r;
        r->sac = ac;

        redisLibevAttach(r->ctx->loop, ac);
        redisAsyncSetConnectCallback(ac, mw_sentinel_on_connect);
        redisAsyncSetDisconnectCallback(ac, mw_sentinel_on_disconnect);

        pw = conf->redis_sentinel_password;

        /* AUTH's own answer is not needed: a refusal fails the question */
        if (pw && pw[0]) {
            (void) redisAsyncCommand(ac, NULL, NULL, "AUTH %s", pw);
        }

        if (redisAsyncCommand(ac, mw_sentinel_reply, NULL,
                              "SENTINEL get-master-addr-by-name %s",
                              conf->redis_master) != REDIS_OK)
        {
            mw_redis_sentinel_close(r);
            r->sentinel_next++;
            continue;
        }

        ev_timer_init(&r->sentinel_timer, mw_sentinel_timeout,
                      (double) conf->redis_timeout, 0.);
        r->sentinel_timer.data = r;
        ev_timer_start(r->ctx->loop, &r->sentinel_timer);
        return;
    }

    mw_redis_lost(r, "no sentinel told the master's address");
}


static unsigned
mw_sentinel_count(const char *list)
{
    unsigned  n = 1;

    for (; *list; list++) {
        n += (*list == ',');
    }

    return n;
}


/* the i-th "host:port" of the list; the port defaults to 26379 */

static int
mw_sentinel_addr(const char *list, unsigned i, char *host, size_t size,
    int *port)
{
    size_t       len;
    const char  *p = list, *end, *colon;

    for (; i > 0; i--) {
        p = strchr(p, ',');
        if (p == NULL) {
            return -1;
        }
        p++;
    }

    end = strchr(p, ',');
    len = end ? (size_t) (end - p) : strlen(p);

    colon = memchr(p, ':', len);
    *port = colon ? atoi(colon + 1) : 26379;

    if (colon) {
        len = colon - p;
    }

    if (len == 0 || len >= size || *port <= 0 || *port > 65535) {
        return -1;
    }

    memcpy(host, p, len);
    host[len] = '\0';

    return 0;
}


static void
mw_sentinel_reply(redisAsyncContext *ac, void *reply, void *data)
{
    int          port;
    char         host[256];
    mw_redis_t  *r = ac->data;
    redisReply  *rep = reply, **e;

    (void) data;

    if (rep == NULL || r->sac != ac) {
        /* freed by a timeout or a stop: that path goes on */
        return;
    }

    e = rep->element;

    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2
        && e[0]->type == REDIS_REPLY_STRING && e[0]->len > 0
        && e[0]->len < sizeof(host) && e[1]->type == REDIS_REPLY_STRING
        && (port = atoi(e[1]->str)) > 0 && port <= 65535)
    {
        memcpy(host, e[0]->str, e[0]->len + 1);

        /* this question's connection ends after its callbacks */
        r->sac = NULL;
        ev_timer_stop(r->ctx->loop, &r->sentinel_timer);
        ac->onDisconnect = NULL;
        redisAsyncDisconnect(ac);

        mw_redis_open(r, host, port);
        return;
    }

    mw_log("warn", "redis sentinel does not name master \"%s\": %s",
           r->ctx->conf.redis_master,
           rep->type == REDIS_REPLY_ERROR ? rep->str : "none");

    r->sac = NULL;
    ev_timer_stop(r->ctx->loop, &r->sentinel_timer);
    ac->onDisconnect = NULL;
    redisAsyncDisconnect(ac);

    mw_sentinel_failed(r);
}


static void
mw_sentinel_on_connect(const redisAsyncContext *ac, int status)
{
    mw_redis_t  *r = ac->data;

    if (status == REDIS_OK || r->sac != ac) {
        return;
    }

    /* hiredis frees the context after this */
    mw_log("warn", "redis sentinel: %s", ac->errstr);

    r->sac = NULL;
    ev_timer_stop(r->ctx->loop, &r->sentinel_timer);

    mw_sentinel_failed(r);
}


static void
mw_sentinel_on_disconnect(const redisAsyncContext *ac, int status)
{
    mw_redis_t  *r = ac->data;

    (void) status;

    if (r->sac != ac) {
        return;
    }

    /* gone before it answered */
    r->sac = NULL;
    ev_timer_stop(r->ctx->loop, &r->sentinel_timer);

    mw_sentinel_failed(r);
}


static void
mw_sentinel_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_redis_t  *r = t->data;

    (void) loop;
    (void) revents;

    mw_log("warn", "redis sentinel did not answer in %ld s",
           r->ctx->conf.redis_timeout);

    mw_redis_sentinel_close(r);
    mw_sentinel_failed(r);
}


static void
mw_sentinel_failed(mw_redis_t *r)
{
    if (r->ctx->stopping) {
        return;
    }

    r->sentinel_next++;
    mw_sentinel_next(r);
}


/* not from a hiredis callback of that context: it is freed at once */

void
mw_redis_sentinel_close(mw_redis_t *r)
{
    redisAsyncContext  *ac = r->sac;

    if (r->ctx == NULL) {
        return;
    }

    ev_timer_stop(r->ctx->loop, &r->sentinel_timer);

    if (ac == NULL) {
        return;
    }

    r->sac = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}
