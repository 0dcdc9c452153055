/*
 * Copyright (C) ngx_mdm contributors
 *
 * Heartbeat and recovery.  Each worker keeps mdm:worker:ID alive; the jobs
 * it has taken sit in its processing list until recorded.  A worker that
 * was killed leaves that list behind: it is put back on mdm:push by the
 * next start with the same worker_id, or by another worker once the
 * heartbeat has expired.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apns.h"


static void mw_apns_beat(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_apns_recovered(redisAsyncContext *ac, void *reply,
    void *data);


void
mw_recover_start(mw_apns_t *a)
{
    const char  *argv[1];

    if (a->beat_timer.cb == NULL) {
        snprintf(a->proc, sizeof(a->proc), MDM_KEY_PUSH_PROC "%s",
                 a->ctx->conf.worker_id);
        snprintf(a->beat_key, sizeof(a->beat_key), MDM_KEY_WORKER "%s",
                 a->ctx->conf.worker_id);

        ev_timer_init(&a->beat_timer, mw_apns_beat, 0.,
                      a->ctx->conf.heartbeat);
        a->beat_timer.data = a;
    }

    ev_timer_again(a->ctx->loop, &a->beat_timer);
    mw_apns_beat(a->ctx->loop, &a->beat_timer, 0);

    /* what a killed predecessor (same worker_id) left, and expired peers' */
    argv[0] = a->proc;
    if (mw_apns_eval(a, mw_apns_recovered, a, MW_LUA_RECOVER, 0, 1, argv)
        != 0)
    {
        mw_apns_take(a);
    }
}


static void
mw_apns_recovered(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->pending--;

    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        mw_log("notice", "put back %lld unfinished pushes", r->integer);
    }

    mw_apns_take(a);
}


static void
mw_apns_beat(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_apns_t  *a = t->data;

    (void) loop;
    (void) revents;

    mw_redis_command(&a->ctx->cmd, NULL, NULL, "SET %s %d PX %ld",
                     a->beat_key, (int) getpid(),
                     a->ctx->conf.heartbeat * 3000);
}


void
mw_recover_stop(mw_apns_t *a)
{
    ev_timer_stop(a->ctx->loop, &a->beat_timer);
}
