/*
 * Copyright (C) ngx_mdm contributors
 *
 * The DDM fan-out: the module only marks what an API call changed (a
 * declaration, a set, an enrollment's sets) in mdm:ddm:dirty; this part
 * turns settled marks into DeclarativeManagement commands, a bounded step
 * (lua/worker_ddm.lua, ddm_budget enrollments) at a time, so that a set
 * shared by 100,000 enrollments neither blocks nginx nor holds Redis for
 * long.  Steps follow each other at once while ready work is left, else
 * every ddm_interval milliseconds.  Several workers may run it: each step
 * is one atomic script, and an enrollment told its token is not told again.
 */

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "mdm_worker.h"


typedef struct {
    mw_ctx_t            *ctx;
    ev_timer             timer;
    int                  pending;    /* a step in flight */
    int                  running;
    long long            looked;     /* since the last quiet step */
    long long            told;
    double               since;
} mw_ddm_t;


static mw_ddm_t  mw_ddm;


static void mw_ddm_step(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_ddm_stepped(redisAsyncContext *ac, void *reply, void *data);
static long long mw_ddm_now_ms(void);


void
mw_ddm_start(mw_ctx_t *ctx)
{
    mw_ddm_t  *d = &mw_ddm;

    if (ctx->conf.ddm_interval <= 0 || d->running) {
        return;
    }

    d->ctx = ctx;
    d->running = 1;

    ev_timer_init(&d->timer, mw_ddm_step, 0.,
                  (double) ctx->conf.ddm_interval / 1000.);
    d->timer.data = d;
    ev_timer_again(ctx->loop, &d->timer);
}


void
mw_ddm_stop(mw_ctx_t *ctx)
{
    mw_ddm_t  *d = &mw_ddm;

    if (d->running) {
        ev_timer_stop(ctx->loop, &d->timer);
        d->running = 0;
    }
}


int
mw_ddm_idle(mw_ctx_t *ctx)
{
    (void) ctx;

    return mw_ddm.pending == 0;
}


static void
mw_ddm_step(struct ev_loop *loop, ev_timer *t, int revents)
{
    char        now[32], settle[32], budget[32], ttl[32];
    const char *argv[4];
    mw_ddm_t   *d = t->data;

    (void) loop;
    (void) revents;

    if (d->pending || d->ctx->stopping || !d->ctx->cmd.ready) {
        return;
    }

    snprintf(now, sizeof(now), "%lld", mw_ddm_now_ms());
    snprintf(settle, sizeof(settle), "%ld", d->ctx->conf.ddm_settle_ms);
    snprintf(budget, sizeof(budget), "%d", d->ctx->conf.ddm_budget);
    snprintf(ttl, sizeof(ttl), "%ld", d->ctx->conf.ddm_command_ttl);

    argv[0] = now;
    argv[1] = settle;
    argv[2] = budget;
    argv[3] = ttl;

    if (mw_redis_eval(&d->ctx->cmd, MW_LUA_DDM, mw_ddm_stepped, d, 0, 4, argv)
        == 0)
    {
        d->pending = 1;
    }
}


/* {looked at, told, ready left}: at once again while work is left */

static void
mw_ddm_stepped(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_ddm_t    *d = data;

    (void) ac;

    d->pending = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r && r->type == REDIS_REPLY_ERROR) {
            mw_log("error", "ddm: fan-out step failed: %s", r->str);
        }
        return;
    }

    if (d->looked == 0 && r->element[0]->integer > 0) {
        d->since = ev_time();
    }

    d->looked += r->element[0]->integer;
    d->told += r->element[1]->integer;

    if (r->element[2]->integer > 0 && d->running && !d->ctx->stopping) {
        /* the next step as soon as the loop turns: pushes go on between */
        ev_timer_stop(d->ctx->loop, &d->timer);
        ev_timer_set(&d->timer, 0., (double) d->ctx->conf.ddm_interval
                                    / 1000.);
        ev_timer_start(d->ctx->loop, &d->timer);
        return;
    }

    if (d->looked > 0) {
        mw_log("notice", "ddm: %lld enrollments looked at, %lld told to "
               "sync, in %.3f s", d->looked, d->told, ev_time() - d->since);
        d->looked = 0;
        d->told = 0;
    }

    ev_timer_again(d->ctx->loop, &d->timer);
}


static long long
mw_ddm_now_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
