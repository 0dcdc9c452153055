/*
 * Copyright (C) ngx_mdm contributors
 *
 * Webhook lanes: the buffered events of one enrollment, oldest first; only
 * the head is ever in flight, so an enrollment's events arrive in order.
 * Lanes are found by enrollment id in a hash table and freed as soon as
 * they are empty, so the cost per event does not depend on the fleet.
 *
 * Lanes with something to send wait in one FIFO ("ready"); at most
 * webhook_max_inflight requests are in flight.  A failed event is retried
 * with exponential backoff and, after webhook_retries attempts, becomes a
 * dead letter.  When three requests in a row fail, whatever the lane, the
 * receiver is taken for down: from then on a single request (a "probe")
 * goes out at a time, spaced from webhook_backoff_ms doubling up to 10 s,
 * and the others wait without costing anything; the first success ends the
 * outage and everything waiting goes out again.  Probes that get no answer
 * at all (connection refused, timeout) do not count as attempts.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "webhook.h"


#define MW_WH_OUTAGE_FAILURES  3


static void mw_wh_enqueue(mw_wh_lane_t *lane);
static void mw_wh_dequeue(mw_wh_lane_t *lane);
static void mw_wh_pump(mw_webhook_t *wh);
static void mw_wh_send(mw_wh_lane_t *lane);
static void mw_wh_done(mw_http_t *h);
static void mw_wh_fail(mw_wh_lane_t *lane, const char *why, int reached);
static void mw_wh_retry(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_wh_probe(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_wh_next(mw_wh_lane_t *lane);
static void mw_wh_lane_free(mw_wh_lane_t *lane);


void
mw_wh_lanes_init(mw_webhook_t *wh)
{
    wh->ready.prev = wh->ready.next = &wh->ready;
    ev_timer_init(&wh->probe, mw_wh_probe, 0., 0.);
    wh->probe.data = wh;
}


/* 0: taken (or a duplicate, dropped); -1: not taken, the caller frees it */
int
mw_wh_add(mw_webhook_t *wh, mw_wh_event_t *e)
{
    size_t         len;
    const char    *id;
    mw_wh_node_t  *n;
    mw_wh_lane_t  *lane;

    /* read again (after a reconnect) while still buffered */
    if (mw_wh_table_find(&wh->events, e->stream_id, strlen(e->stream_id))) {
        mw_wh_event_free(e);
        return 0;
    }

    id = mw_wh_field(e, "id", &len);
    n = mw_wh_table_find(&wh->lanes, id, len);

    if (n) {
        lane = (mw_wh_lane_t *) n;

    } else {
        lane = calloc(1, sizeof(mw_wh_lane_t));
        if (lane == NULL) {
            return -1;
        }

        lane->id = malloc(len + 1);
        if (lane->id == NULL) {
            free(lane);
            return -1;
        }

        memcpy(lane->id, id, len);
        lane->id[len] = '\0';

        if (mw_wh_table_insert(&wh->lanes, &lane->node, lane->id, len) != 0) {
            free(lane->id);
            free(lane);
            return -1;
        }

        lane->id_len = len;
        lane->wh = wh;
        ev_timer_init(&lane->retry, mw_wh_retry, 0., 0.);
        lane->retry.data = lane;
    }

    if (mw_wh_table_insert(&wh->events, &e->node, e->stream_id,
                           strlen(e->stream_id)) != 0)
    {
        if (lane->head == NULL) {
            mw_wh_lane_free(lane);
        }
        return -1;
    }

    if (lane->tail) {
        lane->tail->next = e;
    } else {
        lane->head = e;
    }

    lane->tail = e;
    wh->buffered++;

    if (lane->head == e) {
        mw_wh_enqueue(lane);
        mw_wh_pump(wh);
    }

    return 0;
}


static void
mw_wh_enqueue(mw_wh_lane_t *lane)
{
    mw_wh_lane_t  *q = &lane->wh->ready;

    if (lane->queued) {
        return;
    }

    lane->queued = 1;
    lane->next = q;
    lane->prev = q->prev;
    q->prev->next = lane;
    q->prev = lane;
}


static void
mw_wh_dequeue(mw_wh_lane_t *lane)
{
    if (!lane->queued) {
        return;
    }

    lane->queued = 0;
    lane->prev->next = lane->next;
    lane->next->prev = lane->prev;
}


/* starts what may start: up to the limit, or one probe in an outage */
static void
mw_wh_pump(mw_webhook_t *wh)
{
    mw_wh_lane_t  *lane;

    while (wh->ready.next != &wh->ready && !wh->ctx->stopping) {

        if (wh->outage) {
            if (wh->inflight > 0 || ev_is_active(&wh->probe)) {
                return;
            }

        } else if (wh->inflight >= wh->ctx->conf.webhook_max_inflight) {
            return;
        }

        lane = wh->ready.next;
        mw_wh_dequeue(lane);
        mw_wh_send(lane);
    }
}


static void
mw_wh_send(mw_wh_lane_t *lane)
{
    char            hdr[256];
    size_t          len;
    mw_http_t      *h;
    unsigned int    mdlen;
    mw_webhook_t   *wh = lane->wh;
    mw_conf_t      *conf = &wh->ctx->conf;
    unsigned char   md[EVP_MAX_MD_SIZE];
    unsigned char   b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];

    lane->json = mw_wh_json(lane->head);
    if (lane->json == NULL) {
        mw_wh_fail(lane, "cannot build the JSON body", 1);
        return;
    }

    len = strlen(lane->json);   /* jansson escapes NULs: none in the text */

    h = mw_http_new(wh->ctx, mw_wh_done, lane);
    if (h == NULL) {
        mw_wh_fail(lane, "out of memory", 1);
        return;
    }

    curl_easy_setopt(h->easy, CURLOPT_URL, conf->webhook_url);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long) len);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, lane->json);

    h->headers = curl_slist_append(h->headers, "Content-Type: "
                                   "application/json; charset=utf-8");
    h->headers = curl_slist_append(h->headers, "Expect:");

    if (conf->webhook_hmac_key && conf->webhook_hmac_key[0]) {
        HMAC(EVP_sha256(), conf->webhook_hmac_key,
             (int) strlen(conf->webhook_hmac_key),
             (unsigned char *) lane->json, len, md, &mdlen);
        EVP_EncodeBlock(b64, md, (int) mdlen);
        snprintf(hdr, sizeof(hdr), "X-Hmac-Signature: %s", b64);
        h->headers = curl_slist_append(h->headers, hdr);
    }

    lane->http = h;
    wh->inflight++;

    if (h->headers == NULL || mw_http_start(h) != 0) {
        lane->http = NULL;
        wh->inflight--;
        mw_http_free(h);
        mw_wh_fail(lane, "cannot start the request", 1);
    }
}


static void
mw_wh_done(mw_http_t *h)
{
    int            h_reached;
    char           why[512];
    mw_wh_lane_t  *lane = h->data;
    mw_webhook_t  *wh = lane->wh;

    lane->http = NULL;
    wh->inflight--;

    if (h->result == CURLE_OK && h->status >= 200 && h->status < 300) {
        mw_http_free(h);

        wh->failures = 0;

        if (wh->outage) {
            wh->outage = 0;
            ev_timer_stop(wh->ctx->loop, &wh->probe);
            mw_log("notice", "webhook receiver %s answers again",
                   wh->ctx->conf.webhook_url);
        }

        mw_wh_delivered(wh, lane->head);
        mw_wh_next(lane);
        mw_wh_pump(wh);
        return;
    }

    /* an answer, even a failed one, means the receiver was reached */
    h_reached = h->status != 0;

    if (h->result != CURLE_OK) {
        snprintf(why, sizeof(why), "%s",
                 h->error[0] ? h->error : curl_easy_strerror(h->result));
    } else {
        snprintf(why, sizeof(why), "HTTP %ld", h->status);
    }

    mw_http_free(h);
    mw_wh_fail(lane, why, h_reached);
    mw_wh_pump(wh);
}


static void
mw_wh_fail(mw_wh_lane_t *lane, const char *why, int reached)
{
    char            id[MW_ESC_SIZE];
    double          delay;
    mw_webhook_t   *wh = lane->wh;
    mw_wh_event_t  *e = lane->head;
    mw_conf_t      *conf = &wh->ctx->conf;

    free(lane->json);
    lane->json = NULL;

    /* every failed request, reached or not */
    mw_stats_add(wh->ctx, MW_STAT_WEBHOOK_FAILED, 1);

    /*
     * A probe that cannot even reach the receiver says nothing about the
     * event: it does not count, so an outage of any length ends no event
     * in the dead letters; what the receiver answers always counts.
     */
    if ((reached || !wh->outage) && ++e->attempts == 1) {
        mw_log("warn", "webhook for enrollment \"%s\" (event %s) failed: %s; "
               "retrying", mw_esc(id, sizeof(id), lane->id, lane->id_len),
               e->stream_id, why);
    }

    /* a run of failures on any lanes: the receiver, not one event */
    if (++wh->failures >= MW_WH_OUTAGE_FAILURES) {
        if (!wh->outage) {
            wh->outage = 1;
            wh->probe_delay = conf->webhook_backoff_ms / 1000.;
            mw_log("warn", "webhook receiver %s failed %d times in a row "
                   "(%s): one request at a time until it answers",
                   conf->webhook_url, wh->failures, why);

        } else if (wh->probe_delay < MW_WH_PROBE_MAX) {
            wh->probe_delay *= 2;
            if (wh->probe_delay > MW_WH_PROBE_MAX) {
                wh->probe_delay = MW_WH_PROBE_MAX;
            }
        }

        ev_timer_stop(wh->ctx->loop, &wh->probe);
        ev_timer_set(&wh->probe, wh->probe_delay, 0.);
        ev_timer_start(wh->ctx->loop, &wh->probe);
    }

    if (e->attempts >= conf->webhook_retries) {
        mw_log("error", "webhook for enrollment \"%s\" (event %s) failed %d "
               "times (%s): moved to mdm:webhooks:dead",
               mw_esc(id, sizeof(id), lane->id, lane->id_len),
               e->stream_id, e->attempts, why);
        mw_wh_dead_letter(wh, e, why);
        mw_wh_next(lane);
        return;
    }

    if (wh->ctx->stopping) {
        /* left unacknowledged: delivered after the next start */
        return;
    }

    if (wh->outage) {
        /* the probe timer paces the retries; others get their turn first */
        mw_wh_enqueue(lane);
        return;
    }

    delay = conf->webhook_backoff_ms / 1000. * (1 << (e->attempts - 1));
    if (delay > 300. || e->attempts > 20) {
        delay = 300.;
    }

    ev_timer_set(&lane->retry, delay, 0.);
    ev_timer_start(wh->ctx->loop, &lane->retry);
}


static void
mw_wh_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_wh_lane_t  *lane = t->data;

    (void) loop;
    (void) revents;

    mw_wh_enqueue(lane);
    mw_wh_pump(lane->wh);
}


static void
mw_wh_probe(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;

    mw_wh_pump(t->data);
}


/* the head delivered or dead-lettered: on to the next, or free the lane */
static void
mw_wh_next(mw_wh_lane_t *lane)
{
    mw_webhook_t   *wh = lane->wh;
    mw_wh_event_t  *e = lane->head;

    free(lane->json);
    lane->json = NULL;

    lane->head = e->next;
    if (lane->head == NULL) {
        lane->tail = NULL;
    }

    mw_wh_table_remove(&wh->events, &e->node);
    mw_wh_event_free(e);
    wh->buffered--;

    if (lane->head == NULL) {
        mw_wh_lane_free(lane);

    } else if (!wh->ctx->stopping) {
        mw_wh_enqueue(lane);
    }

    mw_wh_read(wh);
}


static void
mw_wh_lane_free(mw_wh_lane_t *lane)
{
    mw_webhook_t  *wh = lane->wh;

    mw_wh_dequeue(lane);
    ev_timer_stop(wh->ctx->loop, &lane->retry);
    mw_wh_table_remove(&wh->lanes, &lane->node);
    free(lane->json);
    free(lane->id);
    free(lane);
}


/* SIGTERM: nothing new starts; what waits stays unacknowledged in Redis */
void
mw_wh_lanes_stop(mw_webhook_t *wh)
{
    size_t          i;
    mw_wh_node_t   *n;

    ev_timer_stop(wh->ctx->loop, &wh->probe);

    for (i = 0; i < wh->lanes.size; i++) {
        for (n = wh->lanes.buckets[i]; n; n = n->next) {
            ev_timer_stop(wh->ctx->loop, &((mw_wh_lane_t *) n)->retry);
        }
    }
}


void
mw_wh_lanes_cleanup(mw_webhook_t *wh)
{
    size_t          i;
    mw_wh_lane_t   *lane;
    mw_wh_event_t  *e;

    for (i = 0; i < wh->lanes.size; i++) {
        while (wh->lanes.buckets[i]) {
            lane = (mw_wh_lane_t *) wh->lanes.buckets[i];

            while ((e = lane->head) != NULL) {
                lane->head = e->next;
                mw_wh_table_remove(&wh->events, &e->node);
                mw_wh_event_free(e);
            }

            if (lane->http) {
                mw_http_free(lane->http);
            }

            mw_wh_lane_free(lane);
        }
    }

    mw_wh_table_free(&wh->lanes);
    mw_wh_table_free(&wh->events);
}


const char *
mw_wh_field(const mw_wh_event_t *e, const char *name, size_t *len)
{
    size_t  i;

    for (i = 0; i + 1 < e->nfields; i += 2) {
        if (strcmp(e->fields[i], name) == 0) {
            *len = e->lens[i + 1];
            return e->fields[i + 1];
        }
    }

    *len = 0;
    return "";
}


void
mw_wh_event_free(mw_wh_event_t *e)
{
    size_t  i;

    for (i = 0; e->fields && i < e->nfields; i++) {
        free(e->fields[i]);
    }

    free(e->fields);
    free(e->lens);
    free(e->stream_id);
    free(e);
}
