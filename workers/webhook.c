/*
 * Copyright (C) ngx_mdm contributors
 *
 * Webhooks: the module's event stream (mdm:events) POSTed as NanoMDM /
 * MicroMDM JSON, durably.  Events are read through the consumer group
 * "webhooks" and acknowledged only once delivered, so a killed worker's
 * undelivered events are read again (its own at the next start, another
 * worker's once idle for webhook_claim_ms).  Events of one enrollment go
 * out in order: only the oldest is in flight; it is retried with
 * exponential backoff and, after webhook_retries attempts, moved to the
 * dead-letter stream mdm:webhooks:dead.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mdm_worker.h"


#define MW_WH_BUFFERED  1000     /* events read but not delivered */


typedef struct mw_event_s  mw_event_t;
typedef struct mw_lane_s   mw_lane_t;

struct mw_event_s {
    mw_event_t  *next;
    char        *stream_id;
    char        *json;
    char       **fields;         /* the stream entry, for the dead letter */
    size_t       nfields;
    int          attempts;
};

/* the events of one enrollment, oldest first */
struct mw_lane_s {
    mw_webhook_t *wh;
    mw_lane_t   *next;
    char        *id;
    mw_event_t  *head, *tail;
    mw_http_t   *http;
    ev_timer     retry;
};


struct mw_webhook_s {
    mw_ctx_t    *ctx;
    mw_lane_t   *lanes;
    int          buffered;
    int          reading;
    int          pending;
    int          own_done;         /* own pending entries read again */
    ev_timer     read_timer;
    ev_timer     claim_timer;
};


static void mw_wh_read(mw_webhook_t *wh);
static void mw_wh_group(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_entries(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_claimed(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_add(mw_webhook_t *wh, redisReply *entry);
static char *mw_wh_json(char **f, size_t n, const char *stream_id);
static void mw_wh_send(mw_lane_t *lane);
static void mw_wh_done(mw_http_t *h);
static void mw_wh_fail(mw_lane_t *lane, const char *why);
static void mw_wh_retry(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_wh_next(mw_lane_t *lane);
static void mw_wh_acked(redisAsyncContext *ac, void *reply, void *data);
static void mw_wh_tick(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_wh_claim(struct ev_loop *loop, ev_timer *t, int revents);
static const char *mw_wh_field(char **f, size_t n, const char *name);
static void mw_wh_event_free(mw_event_t *e);


int
mw_webhook_init(mw_ctx_t *ctx)
{
    mw_webhook_t  *wh;

    wh = calloc(1, sizeof(mw_webhook_t));
    if (wh == NULL) {
        return -1;
    }

    wh->ctx = ctx;
    ctx->webhook = wh;

    return 0;
}


void
mw_webhook_start(mw_ctx_t *ctx)
{
    mw_webhook_t  *wh = ctx->webhook;

    if (ctx->conf.webhook_url == NULL || ctx->conf.webhook_url[0] == '\0') {
        return;
    }

    if (!ev_is_active(&wh->read_timer) && wh->read_timer.cb == NULL) {
        ev_timer_init(&wh->read_timer, mw_wh_tick, 0.5, 0.);
        ev_timer_init(&wh->claim_timer, mw_wh_claim,
                      ctx->conf.webhook_claim_ms / 1000.,
                      ctx->conf.webhook_claim_ms / 1000.);
        wh->read_timer.data = wh;
        wh->claim_timer.data = wh;
    }

    ev_timer_again(wh->ctx->loop, &wh->claim_timer);

    wh->own_done = 0;

    if (mw_redis_command(&wh->ctx->cmd, mw_wh_group, wh,
                         "XGROUP CREATE mdm:events webhooks 0 MKSTREAM")
        == 0)
    {
        wh->pending++;
    }
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
    mw_lane_t     *lane;
    mw_webhook_t  *wh = ctx->webhook;

    ev_timer_stop(wh->ctx->loop, &wh->read_timer);
    ev_timer_stop(wh->ctx->loop, &wh->claim_timer);

    /* events waiting to be retried stay unacknowledged: read again later */
    for (lane = wh->lanes; lane; lane = lane->next) {
        ev_timer_stop(wh->ctx->loop, &lane->retry);
    }
}


int
mw_webhook_idle(mw_ctx_t *ctx)
{
    mw_lane_t     *lane;
    mw_webhook_t  *wh = ctx->webhook;

    if (wh->reading || wh->pending) {
        return 0;
    }

    for (lane = wh->lanes; lane; lane = lane->next) {
        if (lane->http) {
            return 0;
        }
    }

    return 1;
}


void
mw_webhook_cleanup(mw_ctx_t *ctx)
{
    mw_lane_t     *lane;
    mw_event_t    *e;
    mw_webhook_t  *wh = ctx->webhook;

    if (wh == NULL) {
        return;
    }

    while (wh->lanes) {
        lane = wh->lanes;
        wh->lanes = lane->next;

        while (lane->head) {
            e = lane->head;
            lane->head = e->next;
            mw_wh_event_free(e);
        }

        if (lane->http) {
            mw_http_free(lane->http);
        }

        free(lane->id);
        free(lane);
    }

    free(wh);
    ctx->webhook = NULL;
}


/* this consumer's own unacknowledged entries first, then new ones */

static void
mw_wh_read(mw_webhook_t *wh)
{
    int  rc;

    if (wh->ctx->stopping || wh->reading || wh->buffered >= MW_WH_BUFFERED) {
        return;
    }

    if (!wh->own_done) {
        rc = mw_redis_command(&wh->ctx->cmd, mw_wh_entries, wh,
                              "XREADGROUP GROUP webhooks %s COUNT 100 "
                              "STREAMS mdm:events 0", wh->ctx->conf.worker_id);
    } else {
        rc = mw_redis_command(&wh->ctx->evt, mw_wh_entries, wh,
                              "XREADGROUP GROUP webhooks %s COUNT 100 "
                              "BLOCK 1000 STREAMS mdm:events >",
                              wh->ctx->conf.worker_id);
    }

    if (rc != 0) {
        ev_timer_again(wh->ctx->loop, &wh->read_timer);
        return;
    }

    wh->reading = 1;
}


static void
mw_wh_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;

    mw_wh_read(t->data);
}


static void
mw_wh_entries(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i;
    redisReply    *r = reply, *entries;
    mw_webhook_t  *wh = data;

    (void) ac;

    wh->reading = 0;

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        ev_timer_again(wh->ctx->loop, &wh->read_timer);
        return;
    }

    entries = NULL;

    /* [[stream, [[id, [field, value, ...]], ...]]] */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->type == REDIS_REPLY_ARRAY
        && r->element[0]->elements == 2)
    {
        entries = r->element[0]->element[1];
    }

    if (entries == NULL || entries->elements == 0) {
        /* no (more) own entries left from a previous run */
        wh->own_done = 1;

    } else {
        for (i = 0; i < entries->elements; i++) {
            mw_wh_add(wh, entries->element[i]);
        }
    }

    mw_wh_read(wh);
}


/* another worker's entries, idle too long: that worker is gone */

static void
mw_wh_claim(struct ev_loop *loop, ev_timer *t, int revents)
{
    char           idle[32];
    mw_webhook_t  *wh = t->data;

    (void) loop;
    (void) revents;

    if (wh->ctx->stopping || wh->buffered >= MW_WH_BUFFERED) {
        return;
    }

    snprintf(idle, sizeof(idle), "%ld", wh->ctx->conf.webhook_claim_ms);

    if (mw_redis_command(&wh->ctx->cmd, mw_wh_claimed, wh,
                         "XAUTOCLAIM mdm:events webhooks %s %s 0-0 COUNT 100",
                         wh->ctx->conf.worker_id, idle) == 0)
    {
        wh->pending++;
    }
}


static void
mw_wh_claimed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i;
    redisReply    *r = reply;
    mw_webhook_t  *wh = data;

    (void) ac;

    wh->pending--;

    /* [next cursor, [[id, [fields]], ...], [deleted ids]] */
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return;
    }

    for (i = 0; i < r->element[1]->elements; i++) {
        mw_wh_add(wh, r->element[1]->element[i]);
    }
}


static void
mw_wh_add(mw_webhook_t *wh, redisReply *entry)
{
    size_t        i;
    const char   *id;
    mw_lane_t    *lane;
    mw_event_t   *e, *x;
    redisReply   *f;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
        || entry->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return;
    }

    f = entry->element[1];

    e = calloc(1, sizeof(mw_event_t));
    if (e == NULL) {
        return;
    }

    e->stream_id = strdup(entry->element[0]->str);
    e->fields = calloc(f->elements + 1, sizeof(char *));
    e->nfields = f->elements;

    for (i = 0; e->fields && i < f->elements; i++) {
        e->fields[i] = malloc(f->element[i]->len + 1);
        if (e->fields[i] == NULL) {
            break;
        }
        memcpy(e->fields[i], f->element[i]->str, f->element[i]->len);
        e->fields[i][f->element[i]->len] = '\0';
    }

    if (e->stream_id == NULL || e->fields == NULL || i < f->elements) {
        mw_wh_event_free(e);
        return;
    }

    id = mw_wh_field(e->fields, e->nfields, "id");

    /* a re-read entry already buffered (claimed twice) is not added */
    for (lane = wh->lanes; lane; lane = lane->next) {
        for (x = lane->head; x; x = x->next) {
            if (strcmp(x->stream_id, e->stream_id) == 0) {
                mw_wh_event_free(e);
                return;
            }
        }

        if (strcmp(lane->id, id) == 0) {
            break;
        }
    }

    e->json = mw_wh_json(e->fields, e->nfields, e->stream_id);

    if (e->json == NULL) {
        mw_wh_event_free(e);
        return;
    }

    if (lane == NULL) {
        lane = calloc(1, sizeof(mw_lane_t));
        if (lane == NULL || (lane->id = strdup(id)) == NULL) {
            free(lane);
            mw_wh_event_free(e);
            return;
        }

        lane->wh = wh;
        ev_timer_init(&lane->retry, mw_wh_retry, 0., 0.);
        lane->retry.data = lane;
        lane->next = wh->lanes;
        wh->lanes = lane;
    }

    if (lane->tail) {
        lane->tail->next = e;
    } else {
        lane->head = e;
    }

    lane->tail = e;
    wh->buffered++;

    if (lane->head == e) {
        mw_wh_send(lane);
    }
}


static void
mw_wh_send(mw_lane_t *lane)
{
    char                hdr[256];
    unsigned char       md[EVP_MAX_MD_SIZE];
    unsigned int        mdlen;
    mw_http_t          *h;
    unsigned char       b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    mw_event_t         *e = lane->head;
    mw_webhook_t       *wh = lane->wh;

    h = mw_http_new(wh->ctx, mw_wh_done, lane);
    if (h == NULL) {
        mw_wh_fail(lane, "out of memory");
        return;
    }

    curl_easy_setopt(h->easy, CURLOPT_URL, wh->ctx->conf.webhook_url);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, e->json);

    h->headers = curl_slist_append(h->headers, "Content-Type: "
                                   "application/json; charset=utf-8");
    h->headers = curl_slist_append(h->headers, "Expect:");

    if (wh->ctx->conf.webhook_hmac_key && wh->ctx->conf.webhook_hmac_key[0]) {
        HMAC(EVP_sha256(), wh->ctx->conf.webhook_hmac_key,
             (int) strlen(wh->ctx->conf.webhook_hmac_key),
             (unsigned char *) e->json, strlen(e->json), md, &mdlen);
        EVP_EncodeBlock(b64, md, (int) mdlen);
        snprintf(hdr, sizeof(hdr), "X-Hmac-Signature: %s", b64);
        h->headers = curl_slist_append(h->headers, hdr);
    }

    lane->http = h;

    if (h->headers == NULL || mw_http_start(h) != 0) {
        lane->http = NULL;
        mw_http_free(h);
        mw_wh_fail(lane, "cannot start the request");
    }
}


static void
mw_wh_done(mw_http_t *h)
{
    char        why[512];
    mw_lane_t  *lane = h->data;

    lane->http = NULL;

    if (h->result == CURLE_OK && h->status >= 200 && h->status < 300) {
        mw_http_free(h);
        mw_wh_next(lane);
        return;
    }

    if (h->result != CURLE_OK) {
        snprintf(why, sizeof(why), "%s",
                 h->error[0] ? h->error : curl_easy_strerror(h->result));
    } else {
        snprintf(why, sizeof(why), "HTTP %ld", h->status);
    }

    mw_http_free(h);
    mw_wh_fail(lane, why);
}


static void
mw_wh_fail(mw_lane_t *lane, const char *why)
{
    double         delay;
    mw_event_t    *e = lane->head;
    mw_webhook_t  *wh = lane->wh;

    e->attempts++;

    if (e->attempts == 1) {
        mw_log("warn", "webhook for \"%s\" (event %s) failed: %s; retrying",
               lane->id, e->stream_id, why);
    }

    if (e->attempts >= wh->ctx->conf.webhook_retries) {
        const char  *argv[256];
        size_t       lens[256], i, n;

        mw_log("error", "webhook for \"%s\" (event %s) failed %d times (%s): "
               "moved to mdm:webhooks:dead", lane->id, e->stream_id,
               e->attempts, why);

        n = 0;
        argv[n++] = "XADD";
        argv[n++] = "mdm:webhooks:dead";
        argv[n++] = "*";
        argv[n++] = "event_id";
        argv[n++] = e->stream_id;
        argv[n++] = "error";
        argv[n++] = why;

        for (i = 0; i < e->nfields && n < 254; i++) {
            argv[n++] = e->fields[i];
        }

        for (i = 0; i < n; i++) {
            lens[i] = strlen(argv[i]);
        }

        mw_redis_argv(&wh->ctx->cmd, NULL, NULL, (int) n, argv, lens);
        mw_wh_next(lane);
        return;
    }

    if (wh->ctx->stopping) {
        /* left unacknowledged: delivered after the next start */
        return;
    }

    delay = wh->ctx->conf.webhook_backoff_ms / 1000.
            * (1 << (e->attempts - 1));
    if (delay > 300.) {
        delay = 300.;
    }

    ev_timer_set(&lane->retry, delay, 0.);
    ev_timer_start(wh->ctx->loop, &lane->retry);
}


static void
mw_wh_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;

    mw_wh_send(t->data);
}


/* delivered (or dead-lettered): acknowledge, forget, send the next one */

static void
mw_wh_next(mw_lane_t *lane)
{
    mw_event_t    *e = lane->head;
    mw_webhook_t  *wh = lane->wh;

    if (mw_redis_command(&wh->ctx->cmd, mw_wh_acked, wh,
                         "XACK mdm:events webhooks %s", e->stream_id) == 0)
    {
        wh->pending++;
        /* delivered entries are not kept: the stream stays small */
        mw_redis_command(&wh->ctx->cmd, NULL, NULL, "XDEL mdm:events %s",
                         e->stream_id);
    }

    lane->head = e->next;
    if (lane->head == NULL) {
        lane->tail = NULL;
    }

    mw_wh_event_free(e);
    wh->buffered--;

    if (lane->head && !wh->ctx->stopping) {
        mw_wh_send(lane);
    }

    mw_wh_read(wh);
}


static void
mw_wh_acked(redisAsyncContext *ac, void *reply, void *data)
{
    mw_webhook_t  *wh = data;

    (void) ac;
    (void) reply;

    wh->pending--;
}


/* JSON building */

typedef struct {
    char    *p;
    size_t   len, size;
    int      failed;
} mw_buf_t;


static void
mw_put(mw_buf_t *b, const char *s, size_t n)
{
    char  *p;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->size) {
        b->size = (b->len + n + 1) * 2;
        p = realloc(b->p, b->size);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


static void
mw_puts(mw_buf_t *b, const char *s)
{
    mw_put(b, s, strlen(s));
}


static void
mw_put_json(mw_buf_t *b, const char *s, size_t n)
{
    char    esc[8];
    size_t  i;

    mw_put(b, "\"", 1);

    for (i = 0; i < n; i++) {
        unsigned char  c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            mw_put(b, esc, 2);

        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            mw_put(b, esc, 6);

        } else {
            mw_put(b, (const char *) &s[i], 1);
        }
    }

    mw_put(b, "\"", 1);
}


static int
mw_hex(int c)
{
    return (c >= '0' && c <= '9') ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}


/* "a=1&b=2" as {"a":"1","b":"2"}, percent-decoded; null when empty */

static void
mw_put_params(mw_buf_t *b, const char *q)
{
    int          first = 1;
    char        *v, *k, *d;
    char         buf[4096];
    const char  *s, *amp;
    size_t       n, i, j;

    if (q == NULL || q[0] == '\0') {
        mw_puts(b, "null");
        return;
    }

    mw_puts(b, "{");

    for (s = q; *s; s = amp + (*amp != '\0')) {
        amp = strchr(s, '&');
        if (amp == NULL) {
            amp = s + strlen(s);
        }

        n = (size_t) (amp - s);
        if (n == 0 || n >= sizeof(buf)) {
            continue;
        }

        for (i = 0, j = 0; i < n; i++) {
            if (s[i] == '%' && i + 2 < n && mw_hex(s[i + 1]) >= 0
                && mw_hex(s[i + 2]) >= 0)
            {
                buf[j++] = (char) (mw_hex(s[i + 1]) * 16 + mw_hex(s[i + 2]));
                i += 2;

            } else {
                buf[j++] = (s[i] == '+') ? ' ' : s[i];
            }
        }
        buf[j] = '\0';

        k = buf;
        v = strchr(buf, '=');
        d = v ? v + 1 : buf + j;
        if (v) {
            *v = '\0';
        }

        if (!first) {
            mw_puts(b, ",");
        }
        first = 0;

        mw_put_json(b, k, strlen(k));
        mw_puts(b, ":");
        mw_put_json(b, d, strlen(d));
    }

    mw_puts(b, "}");
}


/*
 * NanoMDM's webhook body: {topic, event_id, created_at, checkin_event |
 * acknowledge_event}.
 */

static char *
mw_wh_json(char **f, size_t n, const char *stream_id)
{
    char          ts[64], *b64;
    size_t        blen;
    time_t        sec;
    mw_buf_t      b;
    struct tm     tm;
    long long     ms;
    const char   *type, *id, *etype, *did, *body, *tally, *status, *uuid;
    int           user_enrollment, connect;

    type = mw_wh_field(f, n, "type");
    id = mw_wh_field(f, n, "id");
    etype = mw_wh_field(f, n, "enrollment_type");
    did = mw_wh_field(f, n, "device_id");
    body = mw_wh_field(f, n, "body");
    tally = mw_wh_field(f, n, "token_update_tally");
    status = mw_wh_field(f, n, "status");
    uuid = mw_wh_field(f, n, "command_uuid");

    connect = strcmp(type, "Connect") == 0;
    user_enrollment = strncmp(etype, "User Enrollment", 15) == 0;

    ms = atoll(mw_wh_field(f, n, "time"));
    sec = (time_t) (ms / 1000);
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int) (ms % 1000));

    blen = strlen(body);
    b64 = malloc(4 * ((blen + 2) / 3) + 1);
    if (b64 == NULL) {
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) body,
                    (int) blen);

    memset(&b, 0, sizeof(b));

    mw_puts(&b, "{\"topic\":");
    mw_puts(&b, "\"mdm.");
    mw_puts(&b, type);
    mw_puts(&b, "\",\"event_id\":");
    mw_put_json(&b, stream_id, strlen(stream_id));
    mw_puts(&b, ",\"created_at\":\"");
    mw_puts(&b, ts);
    mw_puts(&b, connect ? "\",\"acknowledge_event\":{"
                        : "\",\"checkin_event\":{");

    mw_puts(&b, user_enrollment ? "\"enrollment_id\":" : "\"udid\":");
    mw_put_json(&b, did, strlen(did));

    if (connect) {
        mw_puts(&b, ",\"status\":");
        mw_put_json(&b, status, strlen(status));
        if (uuid[0]) {
            mw_puts(&b, ",\"command_uuid\":");
            mw_put_json(&b, uuid, strlen(uuid));
        }
    }

    mw_puts(&b, ",\"url_params\":");
    mw_put_params(&b, mw_wh_field(f, n, "params"));

    mw_puts(&b, ",\"ids\":{\"id\":");
    mw_put_json(&b, id, strlen(id));
    mw_puts(&b, ",\"type\":");
    mw_put_json(&b, etype, strlen(etype));
    if (strcmp(id, did) != 0) {
        mw_puts(&b, ",\"parent_id\":");
        mw_put_json(&b, did, strlen(did));
    }
    mw_puts(&b, "}");

    if (tally[0]) {
        mw_puts(&b, ",\"token_update_tally\":");
        mw_puts(&b, tally);
    }

    mw_puts(&b, ",\"raw_payload\":\"");
    mw_puts(&b, b64);
    mw_puts(&b, "\"}}");

    free(b64);

    if (b.failed) {
        free(b.p);
        return NULL;
    }

    return b.p;
}


static const char *
mw_wh_field(char **f, size_t n, const char *name)
{
    size_t  i;

    for (i = 0; i + 1 < n; i += 2) {
        if (strcmp(f[i], name) == 0) {
            return f[i + 1];
        }
    }

    return "";
}


static void
mw_wh_event_free(mw_event_t *e)
{
    size_t  i;

    for (i = 0; e->fields && i < e->nfields; i++) {
        free(e->fields[i]);
    }

    free(e->fields);
    free(e->stream_id);
    free(e->json);
    free(e);
}
