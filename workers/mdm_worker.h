/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm-worker: the companion process of ngx_http_mdm_module.  One event loop
 * (libev) drives hiredis's async API and libcurl's multi interface; no
 * threads.
 */

#ifndef MDM_WORKER_H
#define MDM_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <curl/curl.h>
#include <hiredis/async.h>


#define MW_VERSION  "0.1.0"


/* configuration: the file, then --key value flags */
typedef struct {
    char        *redis;             /* host:port or unix:/path */
    int          redis_db;
    char        *redis_password;
    char        *apns_url;          /* https://api.push.apple.com */
    char        *apns_ca;           /* CA bundle for the APNs server */
    long         apns_expiration;   /* seconds from now; 0: try once */
    int          apns_priority;
    int          push_retries;
    long         push_backoff_ms;
    int          max_inflight;
    long         repush_interval;   /* seconds; 0: off */
    long         heartbeat;         /* seconds */
    char        *worker_id;
    char        *webhook_url;       /* none: webhooks off */
    char        *webhook_hmac_key;
    int          webhook_retries;
    long         webhook_backoff_ms;
    long         webhook_claim_ms;
} mw_conf_t;


/* one hiredis connection, reconnecting with backoff */
typedef struct mw_redis_s  mw_redis_t;

struct mw_redis_s {
    const char          *name;
    redisAsyncContext   *ac;
    ev_timer             retry;
    double               backoff;
    int                  ready;
    void               (*on_ready)(mw_redis_t *r);
};


/* an HTTP request through the curl multi handle */
typedef struct mw_http_s  mw_http_t;

typedef void (*mw_http_done_pt)(mw_http_t *h);

struct mw_http_s {
    CURL                *easy;
    struct curl_slist   *headers;
    CURLcode             result;
    long                 status;
    char                 error[CURL_ERROR_SIZE];
    char                 body[1024];   /* the start of the response body */
    size_t               body_len;
    char                 apns_id[64];
    mw_http_done_pt      done;
    void                *data;
};


extern mw_conf_t        mw_conf;
extern struct ev_loop  *mw_loop;
extern mw_redis_t       mw_cmd;      /* commands */
extern mw_redis_t       mw_blk;      /* blocking pops only */
extern mw_redis_t       mw_evt;      /* blocking stream reads only */
extern int              mw_stopping;


void mw_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* redis.c */
void mw_redis_start(mw_redis_t *r, const char *name,
    void (*on_ready)(mw_redis_t *r));
int mw_redis_command(mw_redis_t *r, redisCallbackFn *cb, void *data,
    const char *fmt, ...);
int mw_redis_argv(mw_redis_t *r, redisCallbackFn *cb, void *data, int argc,
    const char **argv, const size_t *lens);
void mw_redis_stop(mw_redis_t *r);

/* http.c */
int mw_http_init(void);
void mw_http_cleanup(void);
mw_http_t *mw_http_new(mw_http_done_pt done, void *data);
int mw_http_start(mw_http_t *h);
void mw_http_free(mw_http_t *h);
int mw_http_inflight(void);

/* apns.c */
void mw_apns_start(void);
void mw_apns_stop(void);
int mw_apns_idle(void);
void mw_apns_cleanup(void);

/* webhook.c */
void mw_webhook_start(void);
void mw_webhook_stop(void);
int mw_webhook_idle(void);
void mw_webhook_cleanup(void);

#endif /* MDM_WORKER_H */
