/*
 * Copyright (C) ngx_mdm contributors
 *
 * DEP names: every MW_DEP_TICK seconds one script (worker_dep_tick.lua)
 * renews this worker's DEP lease, takes the sync-now requests and proxy
 * jobs, and reads every name's tokens, config, assigner, session, status
 * and queue, so a PUT through the admin API applies without a restart
 * (D1).  Each name is a lane: one call to Apple at a time, and what comes
 * next is decided by mw_dep_step().
 */

#define _GNU_SOURCE          /* strptime, timegm */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "dep.h"


static void mw_dep_tick(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_dep_ticked(redisAsyncContext *ac, void *reply, void *data);
static void mw_dep_refresh(mw_dep_t *dep, redisReply *r);
static void mw_dep_tokens(mw_dep_name_t *n, const char *json, size_t len);
static void mw_dep_free_name(mw_dep_name_t *n);
static void mw_dep_acked(redisAsyncContext *ac, void *reply,
    void *data);
static int mw_dep_name_ok(const char *s, size_t len);


int
mw_dep_init(mw_ctx_t *ctx)
{
    mw_dep_t  *dep;

    dep = calloc(1, sizeof(mw_dep_t));
    if (dep == NULL) {
        return -1;
    }

    dep->ctx = ctx;
    ctx->dep = dep;
    ev_timer_init(&dep->tick, mw_dep_tick, 0., MW_DEP_TICK);
    dep->tick.data = dep;

    return 0;
}


void
mw_dep_start(mw_ctx_t *ctx)
{
    mw_dep_t  *dep = ctx->dep;

    if (dep && !ev_is_active(&dep->tick) && !dep->stopping) {
        ev_timer_again(ctx->loop, &dep->tick);
    }
}


void
mw_dep_stop(mw_ctx_t *ctx)
{
    mw_dep_t       *dep = ctx->dep;
    const char     *argv[3];
    mw_dep_name_t  *n;

    dep->stopping = 1;
    ev_timer_stop(ctx->loop, &dep->tick);

    /* another worker takes DEP over at once rather than after the lease */
    if (dep->leader) {
        argv[0] = ctx->conf.worker_id;
        argv[1] = "0";
        argv[2] = "0";
        if (mw_redis_eval(&ctx->cmd, MW_LUA_DEP_TICK, mw_dep_acked, dep,
                          0, 3, argv) == 0)
        {
            dep->pending++;
        }
    }

    for (n = dep->names; n; n = n->next) {
        ev_timer_stop(ctx->loop, &n->wait);
    }
}


int
mw_dep_idle(mw_ctx_t *ctx)
{
    mw_dep_t       *dep = ctx->dep;
    mw_dep_name_t  *n;

    if (dep->ticking || dep->pending) {
        return 0;
    }

    for (n = dep->names; n; n = n->next) {
        if (n->busy) {
            return 0;
        }
    }

    return 1;
}


void
mw_dep_cleanup(mw_ctx_t *ctx)
{
    mw_dep_t       *dep = ctx->dep;
    mw_dep_name_t  *n, *next;

    if (dep == NULL) {
        return;
    }

    for (n = dep->names; n; n = next) {
        next = n->next;
        mw_dep_free_name(n);
    }

    free(dep);
    ctx->dep = NULL;
}


static void
mw_dep_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    int          want;
    char         lease[32], jobs[16];
    mw_dep_t    *dep = t->data;
    mw_ctx_t    *ctx = dep->ctx;
    const char  *argv[3];

    (void) loop;
    (void) revents;

    if (dep->ticking || !ctx->cmd.ready) {
        return;
    }

    want = MW_DEP_JOBS_MAX - dep->njobs;
    if (want > 20) {
        want = 20;
    }

    snprintf(lease, sizeof(lease), "%ld", ctx->conf.heartbeat * 3000);
    snprintf(jobs, sizeof(jobs), "%d", want);
    argv[0] = ctx->conf.worker_id;
    argv[1] = lease;
    argv[2] = jobs;

    if (mw_redis_eval(&ctx->cmd, MW_LUA_DEP_TICK, mw_dep_ticked, dep, 0, 3,
                      argv) == 0)
    {
        dep->ticking = 1;
    }
}


static void
mw_dep_ticked(redisAsyncContext *ac, void *reply, void *data)
{
    size_t          i;
    redisReply     *r = reply, *e;
    mw_dep_t       *dep = data;
    mw_dep_name_t  *n;

    (void) ac;

    dep->ticking = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        if (r && r->type == REDIS_REPLY_ERROR) {
            mw_log("error", "dep: tick: %s", r->str);
        }
        return;
    }

    dep->leader = (r->element[0]->integer == 1 && r->elements == 4);
    if (!dep->leader) {
        return;
    }

    /* the proxy jobs first: each finds its lane below */
    e = r->element[2];
    for (i = 0; e->type == REDIS_REPLY_ARRAY && i < e->elements; i++) {
        if (e->element[i]->type == REDIS_REPLY_STRING) {
            mw_dep_job_add(dep, e->element[i]->str, e->element[i]->len);
        }
    }

    mw_dep_refresh(dep, r->element[3]);

    e = r->element[1];
    for (i = 0; e->type == REDIS_REPLY_ARRAY && i < e->elements; i++) {
        n = mw_dep_lane(dep, e->element[i]->str, e->element[i]->len);
        if (n) {
            n->sync_now = 1;
        }
    }

    for (n = dep->names; n; n = n->next) {
        mw_dep_step(n);
    }
}


static const char *
mw_dep_str(redisReply *r, size_t *len)
{
    if (r->type == REDIS_REPLY_STRING) {
        *len = r->len;
        return r->str;
    }

    *len = 0;
    return "";
}


static void
mw_dep_refresh(mw_dep_t *dep, redisReply *list)
{
    size_t          i, len;
    long long       due;
    redisReply     *e;
    const char     *v;
    mw_dep_name_t  *n, **pn;

    for (n = dep->names; n; n = n->next) {
        n->seen = 0;
    }

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
        e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 11) {
            continue;
        }

        v = mw_dep_str(e->element[0], &len);
        n = mw_dep_lane(dep, v, len);
        if (n == NULL) {
            continue;
        }

        n->seen = 1;

        v = mw_dep_str(e->element[1], &len);
        if (n->tokens == NULL || strlen(n->tokens) != len
            || memcmp(n->tokens, v, len) != 0)
        {
            mw_dep_tokens(n, v, len);
        }

        /* "https://host/" + "/session" would be a different URL to sign */
        v = mw_dep_str(e->element[2], &len);
        while (len && v[len - 1] == '/') {
            len--;
        }
        mw_dep_set(&n->base_url, len ? v : "https://mdmenrollment.apple.com",
                   len ? len : 31);
        v = mw_dep_str(e->element[3], &len);
        mw_dep_set(&n->profile, v, len);

        v = mw_dep_str(e->element[4], &len);
        if (n->session == NULL && len) {
            /* a restart reuses the session the last run stored */
            mw_dep_set(&n->session, v, len);
        }

        /* a tick read before our own stop was written does not undo it */
        v = mw_dep_str(e->element[5], &len);
        if ((len == 1 && v[0] == '1')
            || mw_now_ms() - n->stopped_at > 2000)
        {
            n->stopped = (len == 1 && v[0] == '1');
        }

        if (!n->busy && n->phase == MW_DEP_IDLE) {
            /* what the next cycle starts from */
            v = mw_dep_str(e->element[7], &len);
            mw_dep_set(&n->cursor, v, len);
            v = mw_dep_str(e->element[8], &len);
            n->fetching = (len == 5 && memcmp(v, "fetch", 5) == 0)
                          || n->cursor == NULL;
        }

        v = mw_dep_str(e->element[9], &len);
        due = len ? atoll(v) : 0;
        n->assign_due = due;
        n->assigning = (int) e->element[10]->integer;
    }

    /* names no longer in mdm:dep:names go when their lane is idle */
    for (pn = &dep->names; *pn; ) {
        n = *pn;
        if (!n->seen && !n->busy && n->jobs == NULL) {
            *pn = n->next;
            mw_dep_free_name(n);
            continue;
        }
        pn = &n->next;
    }
}


/* the token JSON (D1) changed: a PUT; the session and stop go with it */

static void
mw_dep_tokens(mw_dep_name_t *n, const char *v, size_t len)
{
    json_t       *j;
    const char   *exp;
    struct tm     tm;
    json_error_t  err;

    mw_dep_set(&n->tokens, v, len);
    free(n->ck); free(n->cs); free(n->at); free(n->as);
    n->ck = n->cs = n->at = n->as = NULL;
    n->expiry_ms = 0;
    n->account_ok = 0;
    n->warned_at = 0;

    /* a call in flight has its header copied already */
    free(n->session);
    n->session = NULL;

    if (len == 0) {
        return;
    }

    j = json_loadb(v, len, 0, &err);
    if (j == NULL || !json_is_object(j)) {
        mw_log("error", "dep %s: tokens are not a JSON object", n->name);
        json_decref(j);
        return;
    }

#define MW_TOK(f, dst)                                                     \
    if (json_is_string(json_object_get(j, f))) {                           \
        dst = strdup(json_string_value(json_object_get(j, f)));            \
    }

    MW_TOK("consumer_key", n->ck);
    MW_TOK("consumer_secret", n->cs);
    MW_TOK("access_token", n->at);
    MW_TOK("access_secret", n->as);

    exp = json_string_value(json_object_get(j, "access_token_expiry"));
    memset(&tm, 0, sizeof(tm));
    if (exp && strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm)) {
        n->expiry_ms = (long long) timegm(&tm) * 1000;
    }

    json_decref(j);

    if (n->expiry_ms
        && mw_redis_command(&n->dep->ctx->cmd, mw_dep_acked, n->dep,
                            "HSET " MDM_KEY_DEP "%s:status token_expiry %lld",
                            n->name, n->expiry_ms) == 0)
    {
        n->dep->pending++;
    }

    if (!n->ck || !n->cs || !n->at || !n->as) {
        mw_log("error", "dep %s: tokens lack consumer_key, consumer_secret, "
               "access_token or access_secret", n->name);
    }
}


/* a write whose answer only ends a wait (mw_dep_idle) */

static void
mw_dep_acked(redisAsyncContext *ac, void *reply, void *data)
{
    mw_dep_t  *dep = data;

    (void) ac;
    (void) reply;

    dep->pending--;
}


/* what the lane does next: one thing at a time */

void
mw_dep_step(mw_dep_name_t *n)
{
    long long   now;
    mw_dep_t   *dep = n->dep;
    char        why[128];

    if (n->busy || !dep->leader || dep->stopping || !dep->ctx->cmd.ready) {
        return;
    }

    if (ev_is_active(&n->wait)) {
        /* the admin hears now rather than after the backoff, or a 504 */
        if (n->jobs) {
            mw_dep_job_fail(n, n->jobs, "the DEP name is waiting after an "
                            "error (see its status): try again later");
        }
        return;
    }

    now = mw_now_ms();

    if (n->jobs) {
        if (n->stopped || !n->ck || !n->cs || !n->at || !n->as) {
            mw_dep_job_fail(n, n->jobs, n->stopped ? "the DEP name is stopped"
                            : "the DEP name has no usable tokens");
            return;
        }
        if (n->session == NULL) {
            mw_dep_auth(n, NULL);
            return;
        }
        mw_dep_job_run(n);
        return;
    }

    if (n->stopped || !n->ck || !n->cs || !n->at || !n->as) {
        return;
    }

    if (n->expiry_ms && n->expiry_ms <= now) {
        mw_dep_error(n, "the server token expired: download a new one", 1);
        return;
    }

    if (n->expiry_ms && n->expiry_ms - now < 30LL * 86400000
        && now - n->warned_at > 86400000)
    {
        n->warned_at = now;
        mw_log("warn", "dep %s: the server token expires in %lld days: "
               "download a new one from Apple Business Manager", n->name,
               (n->expiry_ms - now) / 86400000);
    }

    if (n->session == NULL) {
        mw_dep_auth(n, NULL);
        return;
    }

    if (!n->account_ok) {
        mw_dep_account(n);
        return;
    }

    if (!n->recovered) {
        if (n->assigning > 0) {
            mw_dep_recover(n);
            return;
        }
        n->recovered = 1;
    }

    if (n->profile && n->profile[0] && n->assign_due
        && n->assign_due <= now)
    {
        mw_dep_assign(n);
        return;
    }

    if (n->phase == MW_DEP_IDLE && (n->sync_now || now >= n->next_sync)) {
        n->sync_now = 0;
        n->phase = n->fetching ? MW_DEP_FETCH : MW_DEP_SYNC;
        memset(n->cycle, 0, sizeof(n->cycle));
        snprintf(why, sizeof(why), "%s", n->fetching ? "fetch" : "sync");
        mw_log("info", "dep %s: %s starts", n->name, why);
    }

    if (n->phase != MW_DEP_IDLE) {
        mw_dep_page(n);
    }
}


/* EVALSHA of a DEP script for the lane; the lane is busy until the reply */

int
mw_dep_eval(mw_dep_name_t *n, int script, redisCallbackFn *cb, int argc,
    const char **argv)
{
    mw_ctx_t  *ctx = n->dep->ctx;

    if (mw_redis_eval(&ctx->cmd, script, cb, n, 0, argc, argv) != 0) {
        return -1;
    }

    n->busy++;
    n->dep->pending++;

    return 0;
}


/* the reply of mw_dep_eval(): the lane is free again */

mw_dep_name_t *
mw_dep_done_redis(void *reply, void *data, int *ok)
{
    redisReply     *r = reply;
    mw_dep_name_t  *n = data;

    n->busy--;
    n->dep->pending--;

    *ok = (r != NULL && r->type != REDIS_REPLY_ERROR);

    if (r && r->type == REDIS_REPLY_ERROR) {
        mw_log("error", "dep %s: redis: %s", n->name, r->str);
    }

    return n;
}


void
mw_dep_set(char **dst, const char *src, size_t len)
{
    free(*dst);
    *dst = NULL;

    if (len == 0) {
        return;
    }

    *dst = malloc(len + 1);
    if (*dst) {
        memcpy(*dst, src, len);
        (*dst)[len] = '\0';
    }
}


mw_dep_name_t *
mw_dep_lane(mw_dep_t *dep, const char *name, size_t len)
{
    mw_dep_name_t  *n;

    if (!mw_dep_name_ok(name, len)) {
        return NULL;
    }

    for (n = dep->names; n; n = n->next) {
        if (strlen(n->name) == len && memcmp(n->name, name, len) == 0) {
            return n;
        }
    }

    n = calloc(1, sizeof(mw_dep_name_t));
    if (n == NULL) {
        return NULL;
    }

    memcpy(n->name, name, len);
    n->dep = dep;
    n->fetching = 1;
    n->fetch_limit = n->sync_limit = 100;
    n->assign_limit = MW_DEP_ASSIGN_MAX;
    ev_timer_init(&n->wait, NULL, 0., 0.);
    n->next = dep->names;
    dep->names = n;

    return n;
}


/* D1: [A-Za-z0-9._-]{1,64} */

static int
mw_dep_name_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > MW_DEP_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_'
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


static void
mw_dep_free_name(mw_dep_name_t *n)
{
    mw_dep_job_t  *job, *next;

    ev_timer_stop(n->dep->ctx->loop, &n->wait);

    for (job = n->jobs; job; job = next) {
        next = job->next;
        mw_dep_job_free(job);
        n->dep->njobs--;
    }

    free(n->tokens); free(n->ck); free(n->cs); free(n->at); free(n->as);
    free(n->base_url); free(n->profile); free(n->cursor); free(n->session);
    free(n);
}
