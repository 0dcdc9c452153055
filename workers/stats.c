/*
 * Copyright (C) ngx_mdm contributors
 *
 * This worker's counters for mdm_metrics, labelled by worker id: the hash
 * mdm:stats:worker:ID.  Counts are gathered in memory and added once per
 * loop turn (HINCRBY each, then PEXPIRE), so a burst of webhook deliveries
 * costs one round of commands, not one per delivery.  Push outcomes are
 * counted by worker_result.lua in the script that records them.
 *
 * Retention: every write and every heartbeat sets the hash to expire
 * stats_retention seconds later, and the heartbeat keeps this worker in the
 * zset mdm:stats:workers (score: when its hash expires, ms) and drops the
 * members past theirs; so a worker that is gone for good (a new worker_id)
 * leaves nothing behind after stats_retention.
 */

#include <stdio.h>
#include <string.h>

#include "mdm_worker.h"


static const char  *mw_stat_fields[MW_STAT_N] = {
    "push_retries",
    "tls_failures",
    "webhook_delivered",
    "webhook_failed",
    "webhook_dead",
};


static void mw_stats_flush(struct ev_loop *loop, ev_prepare *w, int revents);


static long long
mw_stats_ttl_ms(mw_ctx_t *ctx)
{
    long  s = ctx->conf.stats_retention;

    /* shorter than a worker's life between heartbeats would lose counts */
    if (s < ctx->conf.heartbeat * 3) {
        s = ctx->conf.heartbeat * 3;
    }

    return (long long) s * 1000;
}


const char *
mw_stats_key(mw_ctx_t *ctx)
{
    mw_stats_t  *st = &ctx->stats;

    if (st->key[0] == '\0') {
        snprintf(st->key, sizeof(st->key), MDM_KEY_STATS_WORKER "%s",
                 ctx->conf.worker_id);
        snprintf(st->ttl, sizeof(st->ttl), "%lld", mw_stats_ttl_ms(ctx));
    }

    return st->key;
}


const char *
mw_stats_ttl(mw_ctx_t *ctx)
{
    (void) mw_stats_key(ctx);

    return ctx->stats.ttl;
}


void
mw_stats_add(mw_ctx_t *ctx, int what, long long n)
{
    mw_stats_t  *st = &ctx->stats;

    if (what < 0 || what >= MW_STAT_N || n == 0) {
        return;
    }

    if (st->flush.cb == NULL) {
        ev_prepare_init(&st->flush, mw_stats_flush);
        st->flush.data = ctx;
    }

    st->n[what] += n;

    if (!ev_is_active(&st->flush)) {
        ev_prepare_start(ctx->loop, &st->flush);
    }
}


/* before the loop waits: what this turn counted */
static void
mw_stats_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    int          i, sent;
    char         n[32];
    mw_ctx_t    *ctx = w->data;
    mw_stats_t  *st = &ctx->stats;

    (void) revents;

    ev_prepare_stop(loop, w);

    sent = 0;

    for (i = 0; i < MW_STAT_N; i++) {
        if (st->n[i] == 0) {
            continue;
        }

        snprintf(n, sizeof(n), "%lld", st->n[i]);

        /* not sent (Redis down): kept, added with the next count */
        if (mw_redis_command(&ctx->cmd, NULL, NULL, "HINCRBY %s %s %s",
                             mw_stats_key(ctx), mw_stat_fields[i], n)
            == 0)
        {
            st->n[i] = 0;
            sent = 1;
        }
    }

    if (sent) {
        mw_redis_command(&ctx->cmd, NULL, NULL, "PEXPIRE %s %s",
                         mw_stats_key(ctx), mw_stats_ttl(ctx));
    }
}


/* with every heartbeat: this worker's counters live on, the gone go */
void
mw_stats_beat(mw_ctx_t *ctx)
{
    long long  now = (long long) (ev_time() * 1000);

    mw_redis_command(&ctx->cmd, NULL, NULL, "PEXPIRE %s %s",
                     mw_stats_key(ctx), mw_stats_ttl(ctx));
    /* scored by when its counters expire: any worker can drop it then */
    mw_redis_command(&ctx->cmd, NULL, NULL, "ZADD " MDM_KEY_STATS_WORKERS
                     " %lld %s", now + mw_stats_ttl_ms(ctx),
                     ctx->conf.worker_id);
    mw_redis_command(&ctx->cmd, NULL, NULL, "ZREMRANGEBYSCORE "
                     MDM_KEY_STATS_WORKERS " -inf (%lld", now);
}
