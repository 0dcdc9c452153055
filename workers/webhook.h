/*
 * Copyright (C) ngx_mdm contributors
 *
 * Webhook delivery, shared between its files:
 *   webhook.c        the stream side: consumer group, lease, reads, claims
 *                    from dead workers, acknowledgements and trimming,
 *                    dead letters, the subscription key
 *   webhook_lane.c   the HTTP side: one lane per enrollment (its events in
 *                    order), how many in flight, retries, outage probing
 *   webhook_json.c   the NanoMDM JSON body (jansson)
 *   webhook_table.c  the hash table that finds lanes and events in O(1)
 * and the scripts ngx_mdm_module/lua/worker_webhook_*.lua.
 */

#ifndef MW_WEBHOOK_H
#define MW_WEBHOOK_H

#include <stdint.h>

#include "mdm_worker.h"


#define MW_WH_BUFFERED   1000    /* events read but not yet delivered */
#define MW_WH_PROBE_MAX  10.     /* seconds between probes in an outage */


typedef struct mw_wh_node_s   mw_wh_node_t;
typedef struct mw_wh_event_s  mw_wh_event_t;
typedef struct mw_wh_lane_s   mw_wh_lane_t;


/* a hash table node, embedded in what it indexes; the key is not copied */
struct mw_wh_node_s {
    mw_wh_node_t   *next;
    uint32_t        hash;
    const char     *key;
    size_t          len;
};

typedef struct {
    mw_wh_node_t  **buckets;
    size_t          size;        /* a power of two, or 0 */
    size_t          count;
} mw_wh_table_t;


/* one stream entry */
struct mw_wh_event_s {
    mw_wh_node_t    node;        /* in wh->events, by stream id */
    mw_wh_event_t  *next;        /* the lane's next */
    char           *stream_id;
    char          **fields;      /* name, value, ...; NUL-terminated */
    size_t         *lens;        /* their lengths (values may hold NULs) */
    size_t          nfields;
    int             attempts;
};

/* the buffered events of one enrollment, oldest first; freed when empty */
struct mw_wh_lane_s {
    mw_wh_node_t    node;        /* in wh->lanes, by enrollment id */
    mw_webhook_t   *wh;
    mw_wh_lane_t   *prev, *next; /* in wh->ready while queued */
    mw_wh_event_t  *head, *tail;
    mw_http_t      *http;        /* the head's request in flight */
    char           *json;        /* its body */
    ev_timer        retry;
    int             queued;
    char           *id;
    size_t          id_len;
};


struct mw_webhook_s {
    mw_ctx_t       *ctx;

    /* webhook_lane.c */
    mw_wh_table_t   lanes;
    mw_wh_table_t   events;
    mw_wh_lane_t    ready;       /* sentinel of the lanes waiting to send */
    int             buffered;
    int             inflight;
    int             failures;    /* in a row, on any lane */
    int             outage;      /* receiver taken for down: one probe */
    double          probe_delay;
    ev_timer        probe;

    /* webhook.c */
    int             leader;      /* holds mdm:webhooks:leader */
    int             busy;        /* another live worker still has entries */
    int             claimed;     /* dead workers' entries taken over */
    int             claiming;
    int             settled;     /* a beat passed since it became leader */
    int             history;     /* re-reading own entries from cursor */
    char            cursor[64];
    int             reading;
    int             pending;     /* Redis replies awaited */
    int             idle_events; /* webhook_idle on */
    ev_timer        read_timer;
    ev_timer        beat_timer;
    ev_timer        claim_timer;
    ev_prepare      flush;       /* acknowledgements, once per loop turn */
    char          **acks;
    int             nacks;
    int             acks_size;
};


/* webhook.c: what the lanes report */
void mw_wh_delivered(mw_webhook_t *wh, mw_wh_event_t *e);
void mw_wh_dead_letter(mw_webhook_t *wh, mw_wh_event_t *e, const char *why);
void mw_wh_read(mw_webhook_t *wh);

/* webhook_lane.c */
void mw_wh_lanes_init(mw_webhook_t *wh);
int mw_wh_add(mw_webhook_t *wh, mw_wh_event_t *e);
void mw_wh_lanes_stop(mw_webhook_t *wh);
void mw_wh_lanes_cleanup(mw_webhook_t *wh);
void mw_wh_event_free(mw_wh_event_t *e);
const char *mw_wh_field(const mw_wh_event_t *e, const char *name,
    size_t *len);

/* webhook_json.c */
char *mw_wh_json(const mw_wh_event_t *e);

/* dep_webhook.c: the body of a dep.* event */
char *mw_dep_wh_json(const mw_wh_event_t *e);

/* webhook_table.c */
mw_wh_node_t *mw_wh_table_find(mw_wh_table_t *t, const char *key,
    size_t len);
int mw_wh_table_insert(mw_wh_table_t *t, mw_wh_node_t *n, const char *key,
    size_t len);
void mw_wh_table_remove(mw_wh_table_t *t, mw_wh_node_t *n);
void mw_wh_table_free(mw_wh_table_t *t);

#endif /* MW_WEBHOOK_H */
