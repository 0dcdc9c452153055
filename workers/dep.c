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
    mw_lease_init(&dep->lease, ctx, mw_dep_tick, MW_DEP_TICK, dep);

    return 0;
}


void
mw_dep_start(mw_ctx_t *ctx)
{
    mw_dep_t  *dep = ctx->dep;

    if (dep) {
        mw_lease_start(&dep->lease);
    }
}


void
mw_dep_stop(mw_ctx_t *ctx)
{
    mw_dep_t       *dep = ctx->dep;
    const char     *argv[3];
    mw_dep_name_t  *n;

    mw_lease_release(&dep->lease, MW_LUA_DEP_TICK, mw_dep_acked, dep, 3,
                     argv);

    for (n = dep->names; n; n = n->next) {
        ev_timer_stop(ctx->loop, &n->wait);
    }
}


int
mw_dep_idle(mw_ctx_t *ctx)
{
    mw_dep_t       *dep = ctx->dep;
    mw_dep_name_t  *n;

    if (dep->lease.ticking || dep->lease.pending) {
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
    mw_dep_t    *dep = t->data;
    const char  *argv[3];

    (void) loop;
    (void) revents;

    (void) mw_lease_tick(&dep->lease, MW_LUA_DEP_TICK, mw_dep_ticked, dep,
                         MW_DEP_JOBS_MAX, 3, argv);
}


static void
mw_dep_ticked(redisAsyncContext *ac, void *reply, void *data)
{
    size_t          i;
    redisReply     *r, *e;
    mw_dep_t       *dep = data;
    mw_dep_name_t  *n;

    (void) ac;

    r = mw_lease_ticked(&dep->lease, reply, "dep");
    if (r == NULL) {
        return;
    }

    dep->lease.leader = (r->element[0]->integer == 1 && r->elements == 4);
    if (!dep->lease.leader) {
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

    dep->lease.pending--;
}


/* what the lane does next: one thing at a time */

void
mw_dep_step(mw_dep_name_t *n)
{
    long long   now;
    mw_dep_t   *dep = n->dep;
    char        why[128];

    if (n->busy || !dep->lease.leader || dep->lease.stopping
        || !dep->ctx->cmd.ready)
    {
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
    n->dep->lease.pending++;

    return 0;
}


/* the reply of mw_dep_eval(): the lane is free again */

mw_dep_name_t *
mw_dep_done_redis(void *reply, void *data, int *ok)
{
    redisReply     *r = reply;
    mw_dep_name_t  *n = data;

    n->busy--;
    n->dep->lease.pending--;

    *ok = (r != NULL && r->type != REDIS_REPLY_ERROR);

    if (r && r->type == REDIS_REPLY_ERROR) {
        mw_log("error", "dep %s: redis: %s", n->name, r->str);
    }

    return n;
}


mw_dep_name_t *
mw_dep_lane(mw_dep_t *dep, const char *name, size_t len)
{
    mw_dep_name_t  *n;

    if (!mw_lane_name_ok(name, len)) {
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


void
mw_dep_free_name(mw_dep_name_t *n)
{
    mw_dep_job_t  *job, *next;

    ev_timer_stop(n->dep->ctx->loop, &n->wait);

    for (job = n->jobs; job; job = next) {
        next = job->next;
        mw_dep_job_free(job);
        n->dep->lease.njobs--;
    }

    free(n->tokens); free(n->ck); free(n->cs); free(n->at); free(n->as);
    free(n->base_url); free(n->profile); free(n->cursor); free(n->session);
    free(n);
}
