/*
 * Copyright (C) ngx_mdm contributors
 *
 * hiredis connections on the libev loop, with AUTH/SELECT and reconnects
 * with backoff.  Calls made while a connection is down fail at once; their
 * callers keep their work in Redis and try again.
 *
 * hiredis 0.14 has no command timeout: every call goes through a small
 * record (mw_redis_call_t) so that a connection with calls unanswered for
 * redis_timeout seconds (plus the BLOCK time of its blocking calls) is
 * dropped and made again, as is one answered READONLY, LOADING, MASTERDOWN
 * (a failover) or NOSCRIPT (scripts flushed).  The host name is resolved
 * again at every connect (redisAsyncConnect does it), and TCP keepalive is
 * on, so a replaced or vanished server is noticed.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libev.h>

#include "mdm_worker.h"


#define MW_BACKOFF_MIN  0.1
#define MW_BACKOFF_MAX  5.0


typedef struct {
    mw_redis_t        *r;
    unsigned           gen;      /* of the connection it was sent on */
    redisCallbackFn   *cb;
    void              *data;
} mw_redis_call_t;


static void mw_redis_connect(mw_redis_t *r);
static void mw_redis_retry(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_redis_drop(mw_redis_t *r, const char *why);
static void mw_redis_on_connect(const redisAsyncContext *ac, int status);
static void mw_redis_on_disconnect(const redisAsyncContext *ac, int status);
static void mw_redis_setup_reply(redisAsyncContext *ac, void *reply,
    void *data);
static int mw_redis_check_info(mw_redis_t *r, redisReply *rep);
static void mw_redis_reply(redisAsyncContext *ac, void *reply, void *data);
static void mw_redis_timeout(struct ev_loop *loop, ev_timer *t, int revents);
static mw_redis_call_t *mw_redis_call(mw_redis_t *r, redisCallbackFn *cb,
    void *data);
static int mw_redis_sent(mw_redis_call_t *c, int rc);
static int mw_redis_setup(mw_redis_t *r, const char *what, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));


void
mw_redis_start(mw_ctx_t *ctx, mw_redis_t *r, const char *name,
    void (*on_ready)(mw_redis_t *r))
{
    int  check = r->check, scripts = r->scripts, block = r->block;

    memset(r, 0, sizeof(mw_redis_t));

    /* what main() asked of this connection */
    r->check = check;
    r->scripts = scripts;
    r->block = block;

    r->ctx = ctx;
    r->name = name;
    r->on_ready = on_ready;
    r->backoff = MW_BACKOFF_MIN;

    ev_timer_init(&r->retry, mw_redis_retry, 0., 0.);
    r->retry.data = r;

    ev_timer_init(&r->watchdog, mw_redis_timeout, 0.,
                  (double) ctx->conf.redis_timeout);
    r->watchdog.data = r;

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
    ev_timer_stop(r->ctx->loop, &r->watchdog);

    mw_redis_sentinel_close(r);

    if (ac) {
        r->ac = NULL;
        r->ready = 0;
        r->gen++;
        ac->onDisconnect = NULL;
        redisAsyncFree(ac);
    }
}


static void
mw_redis_connect(mw_redis_t *r)
{
    const char  *addr = r->ctx->conf.redis;
    char         host[256];
    const char  *colon;

    if (r->ctx->conf.redis_sentinels) {
        /* mw_redis_open() once a sentinel names the master */
        mw_redis_sentinel_ask(r);
        return;
    }

    if (strncmp(addr, "unix:", 5) == 0) {
        mw_redis_open(r, addr + 5, -1);
        return;
    }

    /* resolved at every connect (by hiredis): the address may have moved */
    colon = strrchr(addr, ':');
    snprintf(host, sizeof(host), "%.*s",
             (int) (colon ? (size_t) (colon - addr) : strlen(addr)), addr);
    mw_redis_open(r, host, colon ? atoi(colon + 1) : 6379);
}


/* what the log calls the server: its address, or the sentinels' name */

const char *
mw_redis_shown(mw_redis_t *r)
{
    return r->ctx->conf.redis_sentinels ? r->ctx->conf.redis_master
                                        : r->ctx->conf.redis;
}


/* port -1: host is a unix socket's path */

void
mw_redis_open(mw_redis_t *r, const char *host, int port)
{
    mw_script_t        *s;
    redisAsyncContext  *ac;

    ac = (port == -1) ? redisAsyncConnectUnix(host)
                      : redisAsyncConnect(host, port);

    if (ac == NULL || ac->err) {
        mw_redis_lost(r, ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        return;
    }

    if (port != -1) {
        /* a peer that vanished without a FIN is noticed */
        redisEnableKeepAlive(&ac->c);
    }

    ac->data = r;
    r->ac = ac;
    r->gen++;
    r->inflight = 0;

    redisLibevAttach(r->ctx->loop, ac);
    redisAsyncSetConnectCallback(ac, mw_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, mw_redis_on_disconnect);

    /* setup: answered in order, SELECT last; all under the watchdog */

    if ((r->ctx->conf.redis_password && r->ctx->conf.redis_password[0]
         && mw_redis_setup(r, "AUTH", "AUTH %s",
                           r->ctx->conf.redis_password) != 0)
        || (r->check && mw_redis_setup(r, "INFO server", "INFO server") != 0)
        || (r->check && mw_redis_setup(r, "INFO memory", "INFO memory") != 0)
        /* what a sentinel names may be a replica by now: never write there */
        || (r->ctx->conf.redis_sentinels
            && mw_redis_setup(r, "ROLE", "ROLE") != 0))
    {
        mw_redis_drop(r, "cannot send the setup commands");
        return;
    }

    for (s = r->ctx->scripts; r->scripts && s < r->ctx->scripts + MW_LUA_N;
         s++)
    {
        if (mw_redis_setup(r, "SCRIPT LOAD", "SCRIPT LOAD %s", s->src) != 0) {
            mw_redis_drop(r, "cannot send the setup commands");
            return;
        }
    }

    if (mw_redis_setup(r, "SELECT", "SELECT %d", r->ctx->conf.redis_db) != 0)
    {
        mw_redis_drop(r, "cannot send the setup commands");
    }
}


static int
mw_redis_setup(mw_redis_t *r, const char *what, const char *fmt, ...)
{
    int               rc;
    va_list           ap;
    mw_redis_call_t  *c;

    c = mw_redis_call(r, mw_redis_setup_reply, (void *) what);
    if (c == NULL) {
        return -1;
    }

    va_start(ap, fmt);
    rc = redisvAsyncCommand(r->ac, mw_redis_reply, c, fmt, ap);
    va_end(ap);

    return mw_redis_sent(c, rc);
}


static void
mw_redis_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_redis_t  *r = t->data;

    (void) loop;
    (void) revents;

    if (r->ac == NULL && r->sac == NULL && !r->ctx->stopping) {
        mw_redis_connect(r);
    }
}


void
mw_redis_lost(mw_redis_t *r, const char *why)
{
    if (r->ready || r->backoff == MW_BACKOFF_MIN) {
        mw_log("error", "redis %s (%s): %s, reconnecting", mw_redis_shown(r),
               r->name, why);
    }

    r->ac = NULL;
    r->ready = 0;
    r->gen++;
    r->inflight = 0;
    ev_timer_stop(r->ctx->loop, &r->watchdog);

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


/*
 * Closes the connection now (pending calls fail with a NULL reply) and
 * makes a new one after the backoff.  From inside a hiredis callback the
 * free is deferred by hiredis until the callback returns.
 */

static void
mw_redis_drop(mw_redis_t *r, const char *why)
{
    redisAsyncContext  *ac = r->ac;

    if (ac == NULL) {
        return;
    }

    mw_redis_lost(r, why);

    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
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
        mw_redis_drop(r, "setup failed");
        return;
    }

    if (strcmp(data, "ROLE") == 0) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0
            || rep->element[0]->type != REDIS_REPLY_STRING
            || strcmp(rep->element[0]->str, "master") != 0)
        {
            mw_redis_drop(r, "the server the sentinel named is not the "
                          "master (ROLE)");
        }
        return;
    }

    if (strncmp(data, "INFO", 4) == 0) {
        if (mw_redis_check_info(r, rep) != 0) {
            /* too old: no point in going on */
            r->ctx->exit_code = 1;
            ev_break(r->ctx->loop, EVBREAK_ALL);
        }
        return;
    }

    if (strcmp(data, "SELECT") != 0) {
        return;
    }

    if (r->backoff > MW_BACKOFF_MIN) {
        mw_log("notice", "redis %s (%s) is back", mw_redis_shown(r),
               r->name);
    }

    if (!r->failover) {
        r->backoff = MW_BACKOFF_MIN;
    }

    r->failover = 0;
    r->ready = 1;

    if (r->on_ready) {
        r->on_ready(r);
    }
}


/*
 * INFO server: LMOVE, BLMOVE and XAUTOCLAIM need Redis 6.2.  INFO memory:
 * with an eviction policy Redis silently drops enrollments under memory
 * pressure; said once per start.
 */

static int
mw_redis_check_info(mw_redis_t *r, redisReply *rep)
{
    int          major, minor;
    const char  *p;
    char         policy[64];

    if (rep->type != REDIS_REPLY_STRING) {
        return 0;
    }

    p = strstr(rep->str, "redis_version:");
    if (p) {
        major = minor = 0;
        sscanf(p, "redis_version:%d.%d", &major, &minor);

        if (major < 6 || (major == 6 && minor < 2)) {
            mw_log("error", "redis %s is version %.*s: mdm-worker needs "
                   "Redis 6.2 or later (LMOVE, BLMOVE, XAUTOCLAIM); exiting",
                   r->ctx->conf.redis,
                   (int) strcspn(p + 14, "\r\n"), p + 14);
            return -1;
        }
    }

    p = strstr(rep->str, "maxmemory_policy:");
    if (p && !r->ctx->policy_warned
        && sscanf(p, "maxmemory_policy:%63[^\r\n]", policy) == 1
        && strcmp(policy, "noeviction") != 0)
    {
        r->ctx->policy_warned = 1;
        mw_log("warn", "redis %s has maxmemory-policy %s: under memory "
               "pressure it evicts keys, enrollments and queued commands "
               "included; set maxmemory-policy noeviction",
               r->ctx->conf.redis, policy);
    }

    return 0;
}


/* every reply: the watchdog, failover replies, then the caller's callback */

static void
mw_redis_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply       *rep = reply;
    mw_redis_call_t  *c = data;
    mw_redis_t       *r = c->r;
    char              why[128];

    if (c->gen == r->gen && r->ac == ac) {
        r->inflight--;

        if (r->inflight > 0) {
            /* an answer is progress: the next one has a full timeout */
            ev_timer_again(r->ctx->loop, &r->watchdog);
        } else {
            ev_timer_stop(r->ctx->loop, &r->watchdog);
        }

        if (rep && rep->type == REDIS_REPLY_ERROR
            && (strncmp(rep->str, "READONLY", 8) == 0
                || strncmp(rep->str, "LOADING", 7) == 0
                || strncmp(rep->str, "MASTERDOWN", 10) == 0
                || strncmp(rep->str, "NOSCRIPT", 8) == 0))
        {
            snprintf(why, sizeof(why), "%.100s", rep->str);

            /* connecting succeeds while the failover lasts: back off */
            r->failover = 1;
            mw_redis_drop(r, why);
        }
    }

    if (c->cb) {
        c->cb(ac, reply, c->data);
    }

    free(c);
}


static void
mw_redis_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    char         why[64];
    mw_redis_t  *r = t->data;

    (void) revents;

    ev_timer_stop(loop, t);

    snprintf(why, sizeof(why), "no reply in %.0f s", t->repeat);
    mw_redis_drop(r, why);
}


static mw_redis_call_t *
mw_redis_call(mw_redis_t *r, redisCallbackFn *cb, void *data)
{
    mw_redis_call_t  *c;

    c = malloc(sizeof(mw_redis_call_t));
    if (c == NULL) {
        return NULL;
    }

    c->r = r;
    c->gen = r->gen;
    c->cb = cb;
    c->data = data;

    return c;
}


static int
mw_redis_sent(mw_redis_call_t *c, int rc)
{
    mw_redis_t  *r = c->r;

    if (rc != REDIS_OK) {
        free(c);
        return -1;
    }

    if (r->inflight++ == 0) {
        /* blocking calls may rightly wait for their BLOCK time */
        r->watchdog.repeat = (double) r->ctx->conf.redis_timeout + r->block;
        ev_timer_again(r->ctx->loop, &r->watchdog);
    }

    return 0;
}


int
mw_redis_command(mw_redis_t *r, redisCallbackFn *cb, void *data,
    const char *fmt, ...)
{
    int               rc;
    va_list           ap;
    mw_redis_call_t  *c;

    if (!r->ready || (c = mw_redis_call(r, cb, data)) == NULL) {
        return -1;
    }

    va_start(ap, fmt);
    rc = redisvAsyncCommand(r->ac, mw_redis_reply, c, fmt, ap);
    va_end(ap);

    return mw_redis_sent(c, rc);
}


int
mw_redis_argv(mw_redis_t *r, redisCallbackFn *cb, void *data, int argc,
    const char **argv, const size_t *lens)
{
    mw_redis_call_t  *c;

    if (!r->ready || (c = mw_redis_call(r, cb, data)) == NULL) {
        return -1;
    }

    return mw_redis_sent(c, redisAsyncCommandArgv(r->ac, mw_redis_reply, c,
                                                  argc, argv, lens));
}


/* EVALSHA of one of the worker's scripts, loaded at connect */

int
mw_redis_eval(mw_redis_t *r, int script, redisCallbackFn *cb, void *data,
    int nkeys, int argc, const char **argv)
{
    int           i, n, rc;
    char          nk[8];
    const char  **av;
    size_t       *lens;

    av = malloc((argc + 3) * (sizeof(char *) + sizeof(size_t)));
    if (av == NULL) {
        return -1;
    }

    lens = (size_t *) (av + argc + 3);

    n = 0;
    av[n++] = "EVALSHA";
    av[n++] = r->ctx->scripts[script].sha;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[n++] = nk;

    for (i = 0; i < argc; i++) {
        av[n++] = argv[i];
    }

    for (i = 0; i < n; i++) {
        lens[i] = strlen(av[i]);
    }

    rc = mw_redis_argv(r, cb, data, n, av, lens);
    free(av);

    return rc;
}
