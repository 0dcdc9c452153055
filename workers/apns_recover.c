/*
 * Copyright (C) ngx_mdm contributors
 *
 * Heartbeat and recovery.  Each worker keeps mdm:worker:ID alive and lists
 * its processing list in mdm:push:procs; the jobs it has taken sit in that
 * list until their result is recorded.  A killed worker leaves its list
 * behind: another worker puts it back on mdm:push at its next heartbeat
 * after the dead one's has expired (no restart needed), and a worker
 * started again with the same worker_id puts back its own at once.  Jobs
 * a worker still has in flight are never put back (they would be pushed
 * twice), not even when its Redis connection comes back.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apns.h"


static void mw_recover_beat(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_recover_reclaim(mw_apns_t *a);
static void mw_recover_reclaimed(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_recover_owned(redisAsyncContext *ac, void *reply, void *data);
static void mw_recover_scan(mw_apns_t *a);
static void mw_recover_scanned(redisAsyncContext *ac, void *reply,
    void *data);


/* at every (re)connect of the command connection */

void
mw_recover_start(mw_apns_t *a)
{
    if (a->beat_timer.cb == NULL) {
        snprintf(a->proc, sizeof(a->proc), MDM_KEY_PUSH_PROC "%s",
                 a->ctx->conf.worker_id);
        snprintf(a->beat_key, sizeof(a->beat_key), MDM_KEY_WORKER "%s",
                 a->ctx->conf.worker_id);

        ev_timer_init(&a->beat_timer, mw_recover_beat, 0.,
                      a->ctx->conf.heartbeat);
        a->beat_timer.data = a;
    }

    ev_timer_again(a->ctx->loop, &a->beat_timer);
    mw_recover_beat(a->ctx->loop, &a->beat_timer, 0);

    /* replies may have been lost with the connection: before the next take */
    a->recover_own = 1;

    if (!a->scanned) {
        mw_recover_scan(a);
    }

    mw_apns_take(a);
}


void
mw_recover_stop(mw_apns_t *a)
{
    ev_timer_stop(a->ctx->loop, &a->beat_timer);
}


static void
mw_recover_beat(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_apns_t  *a = t->data;

    (void) loop;
    (void) revents;

    mw_redis_command(&a->ctx->cmd, NULL, NULL, "SET %s %d PX %ld",
                     a->beat_key, (int) getpid(),
                     a->ctx->conf.heartbeat * 3000);

    mw_stats_beat(a->ctx);

    /* dead peers' lists: checked with every heartbeat */
    if (revents) {
        mw_recover_reclaim(a);
    }
}


static void
mw_recover_reclaim(mw_apns_t *a)
{
    const char  *argv[2];

    argv[0] = a->proc;
    argv[1] = "0";

    mw_apns_eval(a, mw_recover_reclaimed, a, MW_LUA_RECOVER, 0, 2, argv);
}


static void
mw_recover_reclaimed(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->pending--;

    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        mw_log("notice", "put back %lld pushes of workers whose heartbeat "
               "expired", r->integer);
        mw_apns_take(a);
    }
}


/*
 * Called by mw_apns_take() instead of a take while a->recover_own is set:
 * no take is in flight then, so every job in the own list that is not in
 * memory is truly nobody's.
 */

void
mw_recover_own(mw_apns_t *a)
{
    int           n;
    mw_job_t     *job;
    const char  **argv;

    argv = malloc((a->njobs + 2) * sizeof(char *));
    if (argv == NULL) {
        ev_timer_again(a->ctx->loop, &a->take_timer);
        return;
    }

    n = 0;
    argv[n++] = a->proc;
    argv[n++] = "1";

    for (job = a->jobs.next; job != &a->jobs; job = job->next) {
        argv[n++] = job->id;
    }

    if (mw_apns_eval(a, mw_recover_owned, a, MW_LUA_RECOVER, 0, n, argv)
        != 0)
    {
        /* Redis is down: again when it may be back */
        ev_timer_again(a->ctx->loop, &a->take_timer);

    } else {
        a->taking = 1;
    }

    free(argv);
}


static void
mw_recover_owned(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->pending--;
    a->taking = 0;

    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        ev_timer_again(a->ctx->loop, &a->take_timer);
        return;
    }

    a->recover_own = 0;

    if (r->integer > 0) {
        mw_log("notice", "put back %lld unfinished pushes", r->integer);
    }

    mw_apns_take(a);
}


/* processing lists of workers older than mdm:push:procs, once per start */

static void
mw_recover_scan(mw_apns_t *a)
{
    const char  *argv[1];

    if (a->scan_cursor[0] == '\0') {
        a->scan_cursor[0] = '0';
    }

    argv[0] = a->scan_cursor;

    mw_apns_eval(a, mw_recover_scanned, a, MW_LUA_PROCS, 0, 1, argv);
}


static void
mw_recover_scanned(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->pending--;

    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        /* the next connect scans again */
        a->scan_cursor[0] = '\0';
        return;
    }

    if (strcmp(r->str, "0") == 0) {
        a->scanned = 1;
        mw_recover_reclaim(a);
        return;
    }

    snprintf(a->scan_cursor, sizeof(a->scan_cursor), "%s", r->str);

    if (!a->ctx->stopping) {
        mw_recover_scan(a);
    }
}
