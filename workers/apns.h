/*
 * Copyright (C) ngx_mdm contributors
 *
 * APNs pushes, shared by their four parts: jobs and results (apns.c),
 * certificates and the HTTP/2 push (apns_send.c), the re-push schedule
 * (apns_repush.c), and heartbeat and recovery (apns_recover.c).
 */

#ifndef MW_APNS_H
#define MW_APNS_H

#include "mdm_worker.h"


typedef struct mw_cert_s  mw_cert_t;
typedef struct mw_job_s   mw_job_t;

struct mw_cert_s {
    mw_cert_t   *next;
    char        *topic;
    char        *stamp;        /* updated_at: a new upload replaces it */
    char        *cert;
    size_t       cert_len;
    char        *key;
    size_t       key_len;

    /*
     * Until one push has gone through, curl cannot know that the
     * connection multiplexes: a burst would open one connection per push
     * up to the host limit.  So one push goes first, the others wait for
     * its answer in "parked", then all share its connection.
     */
    int          warm;
    mw_job_t    *warming;
    mw_job_t    *parked;
};


struct mw_job_s {
    mw_apns_t   *apns;
    mw_job_t    *next, *prev;
    mw_job_t    *parked_next;
    mw_cert_t   *cert;
    char        *id;
    char        *topic;
    char        *token;
    char        *magic;
    int          attempts;
    int          pending;      /* still in mdm:push:pending (BLMOVE) */
    ev_timer     retry;
    mw_http_t   *http;
};


struct mw_apns_s {
    mw_ctx_t    *ctx;
    mw_cert_t   *certs;
    mw_job_t     jobs;             /* list head */
    int          njobs;
    int          taking;
    int          pending;          /* redis calls awaiting replies */
    int          bad_requests;     /* 400s in a row */
    int          recover_own;      /* own list to check before a take */
    int          scanned;          /* old processing lists registered */
    char         scan_cursor[32];
    char         proc[256];        /* this worker's processing list */
    char         beat_key[256];
    char         repush_cursor[32];
    ev_timer     beat_timer;
    ev_timer     repush_timer;
    ev_timer     take_timer;
};


/* apns.c */
void mw_apns_take(mw_apns_t *a);
int mw_apns_eval(mw_apns_t *a, redisCallbackFn *cb, void *data, int script,
    int nkeys, int argc, const char **argv);
long long mw_now_ms(void);
void mw_apns_retry(mw_job_t *job, const char *why);
void mw_apns_result(mw_job_t *job, const char *apns_id, const char *error,
    const char *dead_token, const char *counter, int requeue);

/* apns_send.c */
void mw_apns_cert(redisAsyncContext *ac, void *reply, void *data);
mw_cert_t *mw_apns_find_cert(mw_apns_t *a, const char *topic);
void mw_apns_send(mw_job_t *job, mw_cert_t *cert);
void mw_apns_unpark(mw_cert_t *cert);

/* apns_recover.c */
void mw_recover_start(mw_apns_t *a);
void mw_recover_own(mw_apns_t *a);
void mw_recover_stop(mw_apns_t *a);

/* apns_repush.c */
void mw_repush_start(mw_apns_t *a);
void mw_repush_stop(mw_apns_t *a);

#endif /* MW_APNS_H */
