/*
 * Copyright (C) ngx_mdm contributors
 *
 * The re-push schedule: enrollments with queued commands that do not check
 * in are pushed again, less and less often (lua/worker_repush.lua).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apns.h"


static void mw_apns_repush(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_apns_repushed(redisAsyncContext *ac, void *reply, void *data);


void
mw_repush_start(mw_apns_t *a)
{
    if (a->repush_timer.cb == NULL) {
        ev_timer_init(&a->repush_timer, mw_apns_repush, 1., 1.);
        a->repush_timer.data = a;
    }

    if (a->ctx->conf.repush_interval > 0) {
        ev_timer_again(a->ctx->loop, &a->repush_timer);
    }
}


void
mw_repush_stop(mw_apns_t *a)
{
    ev_timer_stop(a->ctx->loop, &a->repush_timer);
}


static void
mw_apns_repush(struct ev_loop *loop, ev_timer *t, int revents)
{
    char         now[32], every[32];
    const char  *argv[3];
    mw_apns_t   *a = t->data;

    (void) loop;
    (void) revents;

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(every, sizeof(every), "%ld", a->ctx->conf.repush_interval * 1000);

    argv[0] = a->repush_cursor;
    argv[1] = now;
    argv[2] = every;

    mw_apns_eval(a, mw_apns_repushed, a, MW_LUA_REPUSH, 0, 3, argv);
}


static void
mw_apns_repushed(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->pending--;

    if (r && r->type == REDIS_REPLY_STRING) {
        snprintf(a->repush_cursor, sizeof(a->repush_cursor), "%s", r->str);
    }
}


