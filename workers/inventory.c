/*
 * Copyright (C) ngx_mdm contributors
 *
 * The inventory refresh (inventory_interval, issue 12): every second one
 * step of lua/worker_inventory.lua queues DeviceInformation to the device
 * channels whose inventory is older than the interval, at most
 * inventory_batch of them, with a push.  Off (0) by default.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "mdm_worker.h"


struct mw_inventory_s {
    mw_ctx_t            *ctx;
    ev_timer             timer;
    char                 cursor[32];
    int                  pending;    /* a step awaiting its reply */
};


static void mw_inventory_step(struct ev_loop *loop, ev_timer *t,
    int revents);
static void mw_inventory_done(redisAsyncContext *ac, void *reply,
    void *data);


int
mw_inventory_init(mw_ctx_t *ctx)
{
    mw_inventory_t  *inv;

    inv = calloc(1, sizeof(mw_inventory_t));
    if (inv == NULL) {
        return -1;
    }

    inv->ctx = ctx;
    inv->cursor[0] = '0';
    ev_timer_init(&inv->timer, mw_inventory_step, 1., 1.);
    inv->timer.data = inv;
    ctx->inventory = inv;

    return 0;
}


void
mw_inventory_start(mw_ctx_t *ctx)
{
    if (ctx->inventory && ctx->conf.inventory_interval > 0) {
        ev_timer_again(ctx->loop, &ctx->inventory->timer);
    }
}


void
mw_inventory_stop(mw_ctx_t *ctx)
{
    if (ctx->inventory) {
        ev_timer_stop(ctx->loop, &ctx->inventory->timer);
    }
}


int
mw_inventory_idle(mw_ctx_t *ctx)
{
    return ctx->inventory == NULL || ctx->inventory->pending == 0;
}


void
mw_inventory_cleanup(mw_ctx_t *ctx)
{
    free(ctx->inventory);
    ctx->inventory = NULL;
}


static void
mw_inventory_step(struct ev_loop *loop, ev_timer *t, int revents)
{
    char             now[32], every[32], batch[32], ttl[32];
    const char      *argv[5];
    struct timeval   tv;
    mw_inventory_t  *inv = t->data;
    mw_conf_t       *conf = &inv->ctx->conf;

    (void) loop;
    (void) revents;

    /* one step at a time: a slow Redis is not asked again meanwhile */
    if (inv->pending) {
        return;
    }

    gettimeofday(&tv, NULL);
    snprintf(now, sizeof(now), "%lld",
             (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000);
    snprintf(every, sizeof(every), "%ld", conf->inventory_interval * 1000);
    snprintf(batch, sizeof(batch), "%d", conf->inventory_batch);
    /* a command is kept two intervals, at least an hour */
    snprintf(ttl, sizeof(ttl), "%ld", conf->inventory_interval * 2 > 3600
                                      ? conf->inventory_interval * 2 : 3600);

    argv[0] = inv->cursor;
    argv[1] = now;
    argv[2] = every;
    argv[3] = batch;
    argv[4] = ttl;

    if (mw_redis_eval(&inv->ctx->cmd, MW_LUA_INVENTORY, mw_inventory_done,
                      inv, 0, 5, argv) == 0)
    {
        inv->pending = 1;
    }
}


static void
mw_inventory_done(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply      *r = reply;
    mw_inventory_t  *inv = data;

    (void) ac;

    inv->pending = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        if (r && r->type == REDIS_REPLY_ERROR) {
            mw_log("error", "inventory step failed: %s", r->str);
        }

        return;
    }

    snprintf(inv->cursor, sizeof(inv->cursor), "%s", r->element[0]->str);

    if (r->element[1]->type == REDIS_REPLY_INTEGER
        && r->element[1]->integer > 0)
    {
        mw_log("info", "inventory: DeviceInformation queued to %lld devices",
               r->element[1]->integer);
    }
}
