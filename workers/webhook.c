/*
 * Copyright (C) ngx_mdm contributors
 *
 * Webhooks, the stream side: the module's event stream mdm:events is read
 * through the consumer group "webhooks" and each entry acknowledged only
 * once delivered (or dead-lettered), so nothing is lost when a worker dies.
 *
 * One worker at a time reads new entries: the holder of the lease
 * mdm:webhooks:leader, renewed with every heartbeat.  With a single reader
 * an enrollment's events all go through one set of lanes (webhook_lane.c)
 * and arrive in order, whatever the number of workers; the others stand
 * by.  Entries are only ever taken over from dead workers, those whose
 * heartbeat key mdm:worker:ID has expired: a live worker whose deliveries
 * are in backoff looks idle to Redis but still owns its entries.  While a
 * live worker still holds entries (a leader that lost its lease), the
 * leader reads nothing new, so an enrollment's later events cannot
 * overtake its earlier ones.
 *
 * At every (re)start a worker first reads its own unacknowledged entries
 * once, with a cursor, then new ones with a blocking read: it never
 * re-reads what it already holds.  After acknowledging, it trims the
 * stream up to the oldest entry not yet delivered.  Its heartbeat also
 * refreshes mdm:webhooks:want, which tells the module to add Idle events.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webhook.h"


#define MW_WH_READ_COUNT  100
#define MW_WH_ACK_MAX     500


static void mw_wh_group(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_beat(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_wh_beaten(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_claim(mw_webhook_t *wh);
static void mw_wh_claimed(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_tick(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_wh_history(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_new(redisAsyncContext *ac, void *reply, void *data);
static redisReply *mw_wh_entries(mw_webhook_t *wh, redisReply *r);
static int mw_wh_take(mw_webhook_t *wh, redisReply *entry);
static void mw_wh_retry_read(mw_webhook_t *wh);
static void mw_wh_ack(mw_webhook_t *wh, const char *stream_id);
static void mw_wh_flush(struct ev_loop *loop, ev_prepare *w, int revents);
static void mw_wh_replied(redisAsyncContext *ac, void *reply, void *data);
static int mw_wh_eval(mw_webhook_t *wh, int script, redisCallbackFn *cb,
    int argc, const char **argv);


int
mw_webhook_init(mw_ctx_t *ctx)
{
    mw_webhook_t  *wh;
    mw_conf_t     *conf = &ctx->conf;

    if (conf->webhook_idle == NULL
        || (strcmp(conf->webhook_idle, "on") != 0
            && strcmp(conf->webhook_idle, "off") != 0))
    {
        mw_log("error", "webhook_idle must be \"on\" or \"off\"");
        return -1;
    }

    if (conf->webhook_max_inflight < 1 || conf->webhook_dead_max < 1
        || conf->webhook_retries < 1)
    {
        mw_log("error", "webhook_max_inflight, webhook_dead_max and "
               "webhook_retries must be 1 or more");
        return -1;
    }

    wh = calloc(1, sizeof(mw_webhook_t));
    if (wh == NULL) {
        return -1;
    }

    wh->ctx = ctx;
    wh->idle_events = strcmp(conf->webhook_idle, "on") == 0;
    ctx->webhook = wh;

    mw_wh_lanes_init(wh);

    ev_timer_init(&wh->read_timer, mw_wh_tick, 0.5, 0.);
    ev_timer_init(&wh->beat_timer, mw_wh_beat, 0., (double) conf->heartbeat);
    ev_prepare_init(&wh->flush, mw_wh_flush);
    wh->read_timer.data = wh;
    wh->beat_timer.data = wh;
    wh->flush.data = wh;

    return 0;
}


/* at start and after every reconnect of the command connection */
void
mw_webhook_start(mw_ctx_t *ctx)
{
    mw_webhook_t  *wh = ctx->webhook;

    if (ctx->conf.webhook_url == NULL || ctx->conf.webhook_url[0] == '\0') {
        return;
    }

    /* own entries first, from the start of the group's history */
    wh->history = 1;
    strcpy(wh->cursor, "0");

    if (mw_redis_command(&ctx->cmd, mw_wh_group, wh, "XGROUP CREATE "
                         MDM_KEY_EVENTS " webhooks 0 MKSTREAM") == 0)
    {
        wh->pending++;
    }

    ev_timer_again(ctx->loop, &wh->beat_timer);
    mw_wh_beat(ctx->loop, &wh->beat_timer, 0);
}


static void
mw_wh_group(redisAsyncContext *ac, void *reply, void *data)
{
    mw_webhook_t  *wh = data;

    (void) ac;
    (void) reply;

    /* created, or BUSYGROUP: it exists already */
    wh->pending--;
    mw_wh_read(wh);
}


void
mw_webhook_stop(mw_ctx_t *ctx)
{
    const char    *argv[1];
    mw_webhook_t  *wh = ctx->webhook;

    ev_timer_stop(ctx->loop, &wh->read_timer);
    ev_timer_stop(ctx->loop, &wh->beat_timer);

    /* events waiting to be retried stay unacknowledged: read again later */
    mw_wh_lanes_stop(wh);

    if (wh->leader) {
        wh->leader = 0;

        argv[0] = ctx->conf.worker_id;
        mw_wh_eval(wh, MW_LUA_WEBHOOK_RELEASE, mw_wh_replied, 1, argv);
    }
}


int
mw_webhook_idle(mw_ctx_t *ctx)
{
    mw_webhook_t  *wh = ctx->webhook;

    /* acknowledgements still to send are sent before the loop ends */
    if (wh->nacks) {
        mw_wh_flush(ctx->loop, &wh->flush, 0);
    }

    return !wh->reading && !wh->pending && wh->inflight == 0;
}


void
mw_webhook_cleanup(mw_ctx_t *ctx)
{
    int            i;
    mw_webhook_t  *wh = ctx->webhook;

    if (wh == NULL) {
        return;
    }

    ev_timer_stop(ctx->loop, &wh->read_timer);
    ev_timer_stop(ctx->loop, &wh->beat_timer);
    ev_prepare_stop(ctx->loop, &wh->flush);

    mw_wh_lanes_cleanup(wh);

    for (i = 0; i < wh->nacks; i++) {
        free(wh->acks[i]);
    }

    free(wh->acks);
    free(wh);
    ctx->webhook = NULL;
}


/* heartbeat: the subscription, the lease; the leader looks for the dead */

static void
mw_wh_beat(struct ev_loop *loop, ev_timer *t, int revents)
{
    char           want_ttl[32], lease_ttl[32];
    const char    *argv[4];
    mw_webhook_t  *wh = t->data;
    mw_conf_t     *conf = &wh->ctx->conf;
    long           ttl;

    (void) loop;
    (void) revents;

    ttl = conf->heartbeat * 3000;
    snprintf(lease_ttl, sizeof(lease_ttl), "%ld", ttl);
    snprintf(want_ttl, sizeof(want_ttl), "%ld", ttl > 60000 ? ttl : 60000);

    argv[0] = wh->idle_events ? "all" : "noidle";
    argv[1] = want_ttl;
    argv[2] = conf->worker_id;
    argv[3] = lease_ttl;

    mw_wh_eval(wh, MW_LUA_WEBHOOK_BEAT, mw_wh_beaten, 4, argv);
}


static void
mw_wh_beaten(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply    *r = reply;
    mw_webhook_t  *wh = data;
    int            leader;

    (void) ac;

    wh->pending--;

    if (r == NULL || r->type != REDIS_REPLY_INTEGER || wh->ctx->stopping) {
        return;
    }

    leader = r->integer == 1;

    if (leader && !wh->leader) {
        mw_log("notice", "delivering webhooks: this worker holds "
               "mdm:webhooks:leader");
        wh->claimed = 0;
        wh->settled = 0;

    } else if (!leader && wh->leader) {
        mw_log("warn", "mdm:webhooks:leader taken by another worker: "
               "delivering only the events already read");
    }

    wh->leader = leader;

    if (leader) {
        mw_wh_claim(wh);
    }
}


static void
mw_wh_claim(mw_webhook_t *wh)
{
    int            room;
    char           count[16], idle[32];
    const char    *argv[3];
    mw_conf_t     *conf = &wh->ctx->conf;

    room = MW_WH_BUFFERED - wh->buffered;
    if (room <= 0 || wh->claiming) {
        return;
    }

    snprintf(count, sizeof(count), "%d",
             room < MW_WH_READ_COUNT ? room : MW_WH_READ_COUNT);
    snprintf(idle, sizeof(idle), "%ld", conf->webhook_claim_ms);

    argv[0] = conf->worker_id;
    argv[1] = count;
    argv[2] = idle;

    if (mw_wh_eval(wh, MW_LUA_WEBHOOK_CLAIM, mw_wh_claimed, 3, argv) == 0) {
        wh->claiming = 1;
    }
}


static void
mw_wh_claimed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i, n;
    redisReply    *r = reply;
    mw_webhook_t  *wh = data;

    (void) ac;

    wh->pending--;
    wh->claiming = 0;

    /* {entries held by others, [[id, [fields]], ...], live others} */
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_INTEGER
        || r->element[1]->type != REDIS_REPLY_ARRAY
        || r->element[2]->type != REDIS_REPLY_INTEGER)
    {
        if (r && r->type == REDIS_REPLY_ERROR) {
            mw_log("error", "webhooks: taking over entries failed: %s",
                   r->str);
        }
        return;
    }

    wh->busy = r->element[0]->integer > 0;
    n = r->element[1]->elements;

    if (n) {
        mw_log("notice", "took over %zu undelivered webhook events of dead "
               "workers", n);
    }

    for (i = 0; i < n; i++) {
        mw_wh_take(wh, r->element[1]->element[i]);
    }

    if (n == MW_WH_READ_COUNT && !wh->ctx->stopping) {
        mw_wh_claim(wh);    /* more to take */
        return;
    }

    /*
     * A new leader with live peers waits one heartbeat before reading:
     * a previous leader alive but late to learn it lost the lease may
     * still take new entries meanwhile; the next check counts them.
     */
    if (!wh->settled && r->element[2]->integer > 0) {
        wh->settled = 1;
        return;
    }

    wh->settled = 1;
    wh->claimed = 1;
    mw_wh_read(wh);
}


/*
 * Reads more when there is room for a full batch: this worker's own
 * entries (cursor), or, for the leader with nobody else holding entries,
 * new ones (blocking, on its own connection).
 */
void
mw_wh_read(mw_webhook_t *wh)
{
    int        rc;
    mw_ctx_t  *ctx = wh->ctx;

    if (ctx->stopping || wh->reading
        || wh->buffered > MW_WH_BUFFERED - MW_WH_READ_COUNT)
    {
        return;
    }

    if (wh->history) {
        rc = mw_redis_command(&ctx->cmd, mw_wh_history, wh,
                              "XREADGROUP GROUP webhooks %s COUNT %d "
                              "STREAMS " MDM_KEY_EVENTS " %s",
                              ctx->conf.worker_id, MW_WH_READ_COUNT,
                              wh->cursor);

    } else if (wh->leader && wh->claimed && !wh->busy) {
        rc = mw_redis_command(&ctx->evt, mw_wh_new, wh,
                              "XREADGROUP GROUP webhooks %s COUNT %d "
                              "BLOCK %d STREAMS " MDM_KEY_EVENTS " >",
                              ctx->conf.worker_id, MW_WH_READ_COUNT,
                              MW_BLOCK_SECONDS * 1000);

    } else {
        /* a standby: the heartbeat says when to read */
        return;
    }

    if (rc != 0) {
        mw_wh_retry_read(wh);
        return;
    }

    wh->reading = 1;
}


static void
mw_wh_retry_read(mw_webhook_t *wh)
{
    if (!ev_is_active(&wh->read_timer) && !wh->ctx->stopping) {
        ev_timer_set(&wh->read_timer, 0.5, 0.);
        ev_timer_start(wh->ctx->loop, &wh->read_timer);
    }
}


static void
mw_wh_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;

    mw_wh_read(t->data);
}


/* own entries: once each, the cursor moving on; none left: history done */
static void
mw_wh_history(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i;
    redisReply    *entries, *id;
    mw_webhook_t  *wh = data;

    (void) ac;

    wh->reading = 0;

    entries = mw_wh_entries(wh, reply);
    if (entries == NULL) {
        return;
    }

    if (entries->elements == 0) {
        wh->history = 0;
        mw_wh_read(wh);
        return;
    }

    for (i = 0; i < entries->elements; i++) {
        id = entries->element[i];

        if (id->type == REDIS_REPLY_ARRAY && id->elements == 2
            && id->element[0]->type == REDIS_REPLY_STRING
            && id->element[0]->len < sizeof(wh->cursor))
        {
            memcpy(wh->cursor, id->element[0]->str, id->element[0]->len);
            wh->cursor[id->element[0]->len] = '\0';
        }

        mw_wh_take(wh, id);
    }

    mw_wh_read(wh);
}


static void
mw_wh_new(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i;
    redisReply    *entries;
    mw_webhook_t  *wh = data;

    (void) ac;

    wh->reading = 0;

    entries = mw_wh_entries(wh, reply);
    if (entries == NULL) {
        return;
    }

    for (i = 0; i < entries->elements; i++) {
        mw_wh_take(wh, entries->element[i]);
    }

    mw_wh_read(wh);
}


/*
 * The entries of an XREADGROUP reply ([[stream, [[id, [f, v...]], ...]]]),
 * an empty array when there are none; NULL after an error (a read is
 * scheduled, and a lost group is created again).
 */
static redisReply *
mw_wh_entries(mw_webhook_t *wh, redisReply *r)
{
    static redisReply  none = { .type = REDIS_REPLY_ARRAY };

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r && strncmp(r->str, "NOGROUP", 7) == 0
            && mw_redis_command(&wh->ctx->cmd, mw_wh_replied, wh,
                                "XGROUP CREATE " MDM_KEY_EVENTS
                                " webhooks 0 MKSTREAM") == 0)
        {
            wh->pending++;
        }

        mw_wh_retry_read(wh);
        return NULL;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->type == REDIS_REPLY_ARRAY
        && r->element[0]->elements == 2
        && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
    {
        return r->element[0]->element[1];
    }

    return &none;   /* nil: BLOCK timed out */
}


/* a stream entry [id, [field, value, ...]] into the lanes */
static int
mw_wh_take(mw_webhook_t *wh, redisReply *entry)
{
    size_t          i;
    redisReply     *f;
    mw_wh_event_t  *e;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
        || entry->element[0]->type != REDIS_REPLY_STRING)
    {
        return -1;
    }

    f = entry->element[1];

    if (f->type != REDIS_REPLY_ARRAY) {
        /* pending but deleted from the stream (trimmed): nothing to send */
        mw_wh_ack(wh, entry->element[0]->str);
        return 0;
    }

    e = calloc(1, sizeof(mw_wh_event_t));
    if (e == NULL) {
        return -1;
    }

    e->stream_id = strdup(entry->element[0]->str);
    e->fields = calloc(f->elements + 1, sizeof(char *));
    e->lens = calloc(f->elements + 1, sizeof(size_t));
    e->nfields = f->elements;

    for (i = 0; e->fields && e->lens && i < f->elements; i++) {
        e->fields[i] = malloc(f->element[i]->len + 1);
        if (e->fields[i] == NULL) {
            break;
        }
        memcpy(e->fields[i], f->element[i]->str, f->element[i]->len);
        e->fields[i][f->element[i]->len] = '\0';
        e->lens[i] = f->element[i]->len;
    }

    if (e->stream_id == NULL || e->fields == NULL || e->lens == NULL
        || i < f->elements || mw_wh_add(wh, e) != 0)
    {
        /* stays pending: read again after the next reconnect */
        mw_log("error", "webhooks: out of memory for event %s",
               entry->element[0]->str);
        mw_wh_event_free(e);
        return -1;
    }

    return 0;
}


/* delivered: acknowledged with the others of this loop turn */
void
mw_wh_delivered(mw_webhook_t *wh, mw_wh_event_t *e)
{
    mw_stats_add(wh->ctx, MW_STAT_WEBHOOK_DELIVERED, 1);
    mw_wh_ack(wh, e->stream_id);
}


/* the event with the last error, capped: MAXLEN ~ webhook_dead_max */
void
mw_wh_dead_letter(mw_webhook_t *wh, mw_wh_event_t *e, const char *why)
{
    char         cap[32];
    size_t       n, i, *lens;
    const char **argv;

    argv = malloc((e->nfields + 10) * sizeof(char *));
    lens = malloc((e->nfields + 10) * sizeof(size_t));

    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        mw_log("error", "webhooks: out of memory: dead letter for event %s "
               "lost", e->stream_id);
        mw_wh_ack(wh, e->stream_id);
        return;
    }

    mw_stats_add(wh->ctx, MW_STAT_WEBHOOK_DEAD, 1);

    snprintf(cap, sizeof(cap), "%ld", wh->ctx->conf.webhook_dead_max);

    n = 0;
    argv[n++] = "XADD";
    argv[n++] = MDM_KEY_WEBHOOKS_DEAD;
    argv[n++] = "MAXLEN";
    argv[n++] = "~";
    argv[n++] = cap;
    argv[n++] = "*";
    argv[n++] = "event_id";
    argv[n++] = e->stream_id;
    argv[n++] = "error";
    argv[n++] = why;

    for (i = 0; i < n; i++) {
        lens[i] = strlen(argv[i]);
    }

    for (i = 0; i < e->nfields; i++, n++) {
        argv[n] = e->fields[i];
        lens[n] = e->lens[i];
    }

    if (mw_redis_argv(&wh->ctx->cmd, mw_wh_replied, wh, (int) n, argv, lens)
        == 0)
    {
        wh->pending++;
    }

    free(argv);
    free(lens);

    mw_wh_ack(wh, e->stream_id);
}


static void
mw_wh_ack(mw_webhook_t *wh, const char *stream_id)
{
    int     size;
    char  **a;

    if (wh->nacks == wh->acks_size) {
        size = wh->acks_size ? wh->acks_size * 2 : 64;
        a = realloc(wh->acks, size * sizeof(char *));
        if (a == NULL) {
            return;   /* stays pending: delivered again one day */
        }
        wh->acks = a;
        wh->acks_size = size;
    }

    wh->acks[wh->nacks] = strdup(stream_id);
    if (wh->acks[wh->nacks] == NULL) {
        return;
    }

    if (wh->nacks++ == 0) {
        ev_prepare_start(wh->ctx->loop, &wh->flush);
    }
}


/* before the loop waits: one XACK + trim for the turn's deliveries */
static void
mw_wh_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    int            i, n, done;
    const char   **argv;
    mw_webhook_t  *wh = w->data;

    (void) revents;

    ev_prepare_stop(loop, w);

    argv = malloc(MW_WH_ACK_MAX * sizeof(char *));
    if (argv == NULL) {
        ev_prepare_start(loop, w);
        return;
    }

    for (done = 0; done < wh->nacks; done += n) {
        n = wh->nacks - done;
        if (n > MW_WH_ACK_MAX) {
            n = MW_WH_ACK_MAX;
        }

        for (i = 0; i < n; i++) {
            argv[i] = wh->acks[done + i];
        }

        /* not sent (Redis down): stays pending, delivered again later */
        mw_wh_eval(wh, MW_LUA_WEBHOOK_ACK, mw_wh_replied, n, argv);
    }

    for (i = 0; i < wh->nacks; i++) {
        free(wh->acks[i]);
    }

    wh->nacks = 0;
    free(argv);
}


static void
mw_wh_replied(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply    *r = reply;
    mw_webhook_t  *wh = data;

    (void) ac;

    wh->pending--;

    if (r && r->type == REDIS_REPLY_ERROR) {
        mw_log("error", "webhooks: redis: %s", r->str);
    }
}


/* one of the worker's scripts (lua/worker_webhook_*.lua), by SHA-1 */
static int
mw_wh_eval(mw_webhook_t *wh, int script, redisCallbackFn *cb, int argc,
    const char **argv)
{
    int           i, rc;
    const char  **av;

    av = malloc((argc + 3) * sizeof(char *));
    if (av == NULL) {
        return -1;
    }

    av[0] = "EVALSHA";
    av[1] = wh->ctx->scripts[script].sha;
    av[2] = "0";

    for (i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
    }

    rc = mw_redis_argv(&wh->ctx->cmd, cb, wh, argc + 3, av, NULL);
    free(av);

    if (rc == 0) {
        wh->pending++;
    }

    return rc;
}
