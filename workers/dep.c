/*
 * Copyright (C) ngx_mdm contributors
 *
 * DEP names: every MW_DEP_TICK seconds one script (worker_dep_tick.lua)
 * renews this worker's DEP lease, takes the sync-now requests and proxy
 * jobs, and reads every name's tokens, config, assigner, session, status
 * and queue, so a PUT through the admin API applies without a restart
 * (D1; dep_conf.c takes it in).  Each name is a lane: one call to Apple
 * at a time, and what comes next is decided by mw_dep_step().
 */

#include <stdlib.h>
#include <string.h>

#include "dep.h"


static void mw_dep_tick(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_dep_ticked(redisAsyncContext *ac, void *reply, void *data);
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


/* a write whose answer only ends a wait (mw_dep_idle) */

void
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


void
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
