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

#include "ngx_mdm_keys.h"


#define MW_VERSION  "0.1.0"


/* configuration: the file, then --key value flags */
typedef struct {
    char        *redis;             /* host:port or unix:/path */
    int          redis_db;
    char        *redis_password;
    long         redis_timeout;     /* seconds without a reply */
    char        *redis_sentinels;   /* host:port,host:port; NULL: none */
    char        *redis_master;      /* the name the sentinels know */
    char        *redis_sentinel_password;
    char        *apns_url;          /* https://api.push.apple.com */
    char        *apns_ca;           /* CA bundle for the APNs server */
    long         apns_expiration;   /* seconds from now; 0: try once */
    int          apns_priority;
    int          push_retries;
    long         push_backoff_ms;
    int          max_inflight;
    long         repush_interval;   /* seconds; 0: off */
    long         heartbeat;         /* seconds */
    long         stop_timeout;      /* seconds after SIGTERM */
    char        *worker_id;
    char        *webhook_url;       /* none: webhooks off */
    char        *webhook_hmac_key;
    int          webhook_retries;
    long         webhook_backoff_ms;
    long         webhook_claim_ms;
    char        *webhook_idle;      /* on | off: Idle events wanted */
    int          webhook_max_inflight;
    long         webhook_dead_max;
    /* dep */
    long         dep_sync_interval; /* seconds */
    long         dep_backoff_ms;
    long         dep_backoff_max;   /* seconds */
    int          dep_page_size;
    int          dep_protocol_version;
    long         dep_throttle_cooldown; /* seconds */
    int          dep_assign_retries;
    long         dep_assign_backoff; /* seconds */
    long         dep_events_max;
    long         dep_deleted_ttl;   /* seconds */
    long         dep_session_ttl;   /* seconds */
    long         inventory_interval; /* seconds; 0: off (inventory.c) */
    int          inventory_batch;    /* devices asked per step */
    long         ddm_interval;      /* ms between DDM fan-out steps; 0 off */
    long         ddm_settle_ms;     /* a change's quiet time before it */
    int          ddm_budget;        /* enrollments per step, about */
    long         ddm_command_ttl;   /* s the commands are kept */
    long         stats_retention;   /* s a silent worker's counters live */
    /* vpp */
    long         vpp_sync_interval; /* seconds */
    long         vpp_full_interval; /* seconds */
    long         vpp_backoff_ms;
    long         vpp_backoff_max;   /* seconds */
    long         vpp_poll_ms;
    long         vpp_poll_max;      /* seconds */
    long         vpp_event_timeout; /* seconds */
    long         vpp_batch_max;
    long         vpp_events_max;
} mw_conf_t;


typedef struct mw_ctx_s      mw_ctx_t;
typedef struct mw_curl_s     mw_curl_t;      /* http.c */
typedef struct mw_apns_s     mw_apns_t;      /* apns.c */
typedef struct mw_webhook_s  mw_webhook_t;   /* webhook.c */
typedef struct mw_dep_s      mw_dep_t;       /* dep.c */
typedef struct mw_inventory_s  mw_inventory_t;  /* inventory.c */
typedef struct mw_vpp_s      mw_vpp_t;       /* vpp.c */


/* one hiredis connection, reconnecting with backoff */
typedef struct mw_redis_s  mw_redis_t;

struct mw_redis_s {
    mw_ctx_t            *ctx;
    const char          *name;
    redisAsyncContext   *ac;
    ev_timer             retry;
    ev_timer             watchdog;   /* calls unanswered too long */
    double               backoff;
    unsigned             gen;        /* connections made so far */
    int                  inflight;   /* calls awaiting replies */
    int                  ready;
    int                  failover;   /* dropped for READONLY & co. */
    int                  check;      /* INFO checks at connect */
    int                  scripts;    /* SCRIPT LOAD at connect */
    int                  block;      /* seconds its calls may block */
    void               (*on_ready)(mw_redis_t *r);
    redisAsyncContext   *sac;        /* asking a sentinel (redis_sentinel.c) */
    ev_timer             sentinel_timer;
    unsigned             sentinel_next;
    unsigned             sentinel_tries;
};


/* stats.c: this worker's counters, added to mdm:stats:worker:ID once per
 * loop turn (APNs results are counted by worker_result.lua itself) */
enum {
    MW_STAT_PUSH_RETRIES = 0,
    MW_STAT_TLS_FAILURES,
    MW_STAT_WEBHOOK_DELIVERED,
    MW_STAT_WEBHOOK_FAILED,
    MW_STAT_WEBHOOK_DEAD,
    MW_STAT_N
};

typedef struct {
    long long            n[MW_STAT_N];
    ev_prepare           flush;
    char                 key[320];
    char                 ttl[32];    /* stats_retention, ms */
} mw_stats_t;


/* the worker's Lua scripts (scripts.c), run by EVALSHA */
enum {
    MW_LUA_TAKE = 0,
    MW_LUA_INFO,
    MW_LUA_RESULT,
    MW_LUA_RECOVER,
    MW_LUA_REPUSH,
    MW_LUA_PROCS,
    MW_LUA_WEBHOOK_BEAT,
    MW_LUA_WEBHOOK_RELEASE,
    MW_LUA_WEBHOOK_CLAIM,
    MW_LUA_WEBHOOK_ACK,
    MW_LUA_DEP_TICK,
    MW_LUA_DEP_PAGE,
    MW_LUA_DEP_ASSIGN,
    MW_LUA_DEP_ERROR,
    MW_LUA_DEP_CURSOR,
    MW_LUA_INVENTORY,
    MW_LUA_DDM,
    MW_LUA_VPP_TICK,
    MW_LUA_VPP_ERROR,
    MW_LUA_VPP_TOKEN,
    MW_LUA_VPP_PAGE,
    MW_LUA_VPP_INSTALL,
    MW_LUA_N
};

typedef struct {
    const char          *src;
    char                 sha[41];
} mw_script_t;

/* seconds the blocking reads (BLMOVE, XREADGROUP BLOCK) wait */
#define MW_BLOCK_SECONDS  1


/* an HTTP request through the curl multi handle */
typedef struct mw_http_s  mw_http_t;

typedef void (*mw_http_done_pt)(mw_http_t *h);

struct mw_http_s {
    mw_ctx_t            *ctx;
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


/*
 * Everything the worker's parts share, passed explicitly: each part keeps
 * a pointer to it in its own state and reaches it from callbacks through
 * their data pointers.
 */
struct mw_ctx_s {
    mw_conf_t            conf;
    struct ev_loop      *loop;
    mw_redis_t           cmd;        /* commands */
    mw_redis_t           blk;        /* blocking pops only */
    mw_redis_t           evt;        /* blocking stream reads only */
    int                  stopping;
    int                  exit_code;
    ev_tstamp            stop_by;    /* SIGTERM: exit by then */
    int                  policy_warned;
    mw_script_t          scripts[MW_LUA_N];
    ev_timer             idle;       /* at exit: waits for work in flight */
    mw_curl_t           *curl;
    mw_apns_t           *apns;
    mw_webhook_t        *webhook;
    mw_dep_t            *dep;
    mw_inventory_t      *inventory;
    mw_stats_t           stats;
    mw_vpp_t            *vpp;
};


void mw_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* what came from a device or a server, printable in a log line */
#define MW_ESC_SIZE  256
const char *mw_esc(char *buf, size_t size, const char *s, size_t len);

/* redis.c */
void mw_redis_start(mw_ctx_t *ctx, mw_redis_t *r, const char *name,
    void (*on_ready)(mw_redis_t *r));
int mw_redis_command(mw_redis_t *r, redisCallbackFn *cb, void *data,
    const char *fmt, ...);
int mw_redis_argv(mw_redis_t *r, redisCallbackFn *cb, void *data, int argc,
    const char **argv, const size_t *lens);
int mw_redis_eval(mw_redis_t *r, int script, redisCallbackFn *cb, void *data,
    int nkeys, int argc, const char **argv);

/* scripts.c */
void mw_scripts_init(mw_ctx_t *ctx);
void mw_redis_stop(mw_redis_t *r);
void mw_redis_open(mw_redis_t *r, const char *host, int port);
void mw_redis_lost(mw_redis_t *r, const char *why);
const char *mw_redis_shown(mw_redis_t *r);

/* redis_sentinel.c */
void mw_redis_sentinel_ask(mw_redis_t *r);
void mw_redis_sentinel_close(mw_redis_t *r);

/* http.c */
int mw_http_init(mw_ctx_t *ctx);
void mw_http_cleanup(mw_ctx_t *ctx);
mw_http_t *mw_http_new(mw_ctx_t *ctx, mw_http_done_pt done, void *data);
int mw_http_start(mw_http_t *h);
void mw_http_free(mw_http_t *h);
int mw_http_inflight(mw_ctx_t *ctx);

/* apns.c */
int mw_apns_init(mw_ctx_t *ctx);
void mw_apns_start(mw_ctx_t *ctx);
void mw_apns_stop(mw_ctx_t *ctx);
int mw_apns_idle(mw_ctx_t *ctx);
void mw_apns_cleanup(mw_ctx_t *ctx);

/* webhook.c */
int mw_webhook_init(mw_ctx_t *ctx);
void mw_webhook_start(mw_ctx_t *ctx);
void mw_webhook_stop(mw_ctx_t *ctx);
int mw_webhook_idle(mw_ctx_t *ctx);
void mw_webhook_cleanup(mw_ctx_t *ctx);

/* dep.c */
int mw_dep_init(mw_ctx_t *ctx);
void mw_dep_start(mw_ctx_t *ctx);
void mw_dep_stop(mw_ctx_t *ctx);
int mw_dep_idle(mw_ctx_t *ctx);
void mw_dep_cleanup(mw_ctx_t *ctx);
/* inventory.c */
int mw_inventory_init(mw_ctx_t *ctx);
void mw_inventory_start(mw_ctx_t *ctx);
void mw_inventory_stop(mw_ctx_t *ctx);
int mw_inventory_idle(mw_ctx_t *ctx);
void mw_inventory_cleanup(mw_ctx_t *ctx);
/* stats.c */
void mw_stats_add(mw_ctx_t *ctx, int what, long long n);
void mw_stats_beat(mw_ctx_t *ctx);
const char *mw_stats_key(mw_ctx_t *ctx);
const char *mw_stats_ttl(mw_ctx_t *ctx);
/* vpp.c: Apps and Books */
int mw_vpp_init(mw_ctx_t *ctx);
void mw_vpp_start(mw_ctx_t *ctx);
void mw_vpp_stop(mw_ctx_t *ctx);
int mw_vpp_idle(mw_ctx_t *ctx);
void mw_vpp_cleanup(mw_ctx_t *ctx);
/* ddm.c: the DeclarativeManagement fan-out */
void mw_ddm_start(mw_ctx_t *ctx);
void mw_ddm_stop(mw_ctx_t *ctx);
int mw_ddm_idle(mw_ctx_t *ctx);

#endif /* MDM_WORKER_H */
