/*
 * Copyright (C) ngx_mdm contributors
 *
 * DEP (Automated Device Enrollment), the worker's side, shared by its
 * files:
 *   dep.c         the names (one lane each), the tick that reads them and
 *                 their tokens from Redis, what a lane does next
 *   dep_conf.c    what the tick read, into the lanes (tokens, config)
 *   dep_oauth.c   the OAuth 1.0a Authorization header of GET /session
 *   dep_http.c    one call to Apple: headers, sessions, re-auth + replay,
 *                 errors, backoff, stopping a name
 *   dep_sync.c    /account, fetch and sync pages, cursor errors
 *   dep_assign.c  auto-assign batches, their results, crash recovery
 *   dep_proxy.c   the admin API's calls (contract D4)
 *   dep_webhook.c the webhook body of DEP events
 * and the scripts ngx_mdm_module/lua/worker_dep_*.lua.  Contracts D1-D5
 * (HELPERS.md, README "DEP: the worker").
 */

#ifndef MW_DEP_H
#define MW_DEP_H

#include "lane.h"


#define MW_DEP_NAME_MAX     64
#define MW_DEP_ASSIGN_MAX   1000      /* serials per assign call (Apple) */
#define MW_DEP_BODY_MAX     (64 * 1024 * 1024)
#define MW_DEP_JOBS_MAX     100       /* proxy jobs held in memory */
#define MW_DEP_TICK         0.2       /* seconds */

enum { MW_DEP_IDLE = 0, MW_DEP_FETCH, MW_DEP_SYNC };

typedef struct mw_dep_s       mw_dep_t;
typedef struct mw_dep_name_s  mw_dep_name_t;
typedef struct mw_dep_call_s  mw_dep_call_t;
typedef struct mw_dep_job_s   mw_dep_job_t;

typedef void (*mw_dep_done_pt)(mw_dep_call_t *c);


/* one call to Apple, in the name's lane */
struct mw_dep_call_s {
    mw_dep_name_t   *n;
    mw_http_t       *http;
    const char      *method;
    char            *path;
    char            *body;        /* NULL: none */
    char            *resp;        /* the response body, NUL-terminated */
    size_t           resp_len;
    size_t           resp_size;
    char             ctype[256];  /* its Content-Type; status 0: the error */
    long             retry_after; /* seconds; -1: none */
    long             status;
    int              replayed;    /* re-authenticated once already */
    mw_dep_done_pt   done;
    void            *data;
};


/* a proxy job (D4) */
struct mw_dep_job_s {
    mw_dep_job_t    *next;
    char             id[33];
    char            *method;
    char            *path;
    char            *body;
    long long        deadline;
};


struct mw_dep_name_s {
    mw_dep_name_t   *next;
    mw_dep_t        *dep;
    char             name[MW_DEP_NAME_MAX + 1];
    int              seen;        /* in mdm:dep:names at the last tick */

    /* D1, as of the last tick */
    char            *tokens;      /* the JSON as stored: a change = a PUT */
    char            *ck, *cs, *at, *as;
    long long        expiry_ms;
    char            *base_url;
    char            *profile;     /* the assigner's profile_uuid */
    char            *cursor;
    int              stopped;
    int              fetching;    /* status phase "fetch": go on fetching */
    long long        assign_due;  /* first due in the queue; 0: none */
    int              assigning;   /* left in flight by a crash */
    long long        warned_at;
    long long        stopped_at;  /* stopped here: ticks older say not */

    /* the lane */
    char            *session;
    int              busy;        /* a call or a script in flight */
    ev_timer         wait;        /* backoff, Retry-After */
    double           backoff;
    int              account_ok;
    int              fetch_limit, sync_limit, assign_limit;
    int              phase;
    int              recovered;
    int              sync_now;
    long long        next_sync;
    long long        cycle[4];    /* added, modified, deleted, queued */
    mw_dep_job_t    *jobs;
};


struct mw_dep_s {
    mw_ctx_t        *ctx;
    mw_dep_name_t   *names;
    mw_lease_t       lease;
};


/* dep.c */
void mw_dep_free_name(mw_dep_name_t *n);
void mw_dep_acked(redisAsyncContext *ac, void *reply, void *data);
mw_dep_name_t *mw_dep_lane(mw_dep_t *dep, const char *name, size_t len);
void mw_dep_step(mw_dep_name_t *n);
int mw_dep_eval(mw_dep_name_t *n, int script, redisCallbackFn *cb,
    int argc, const char **argv);
mw_dep_name_t *mw_dep_done_redis(void *reply, void *data, int *ok);

/* apns.c */
long long mw_now_ms(void);

/* dep_conf.c */
void mw_dep_refresh(mw_dep_t *dep, redisReply *list);

/* dep_oauth.c */
char *mw_dep_oauth_header(const char *url, const char *ck, const char *cs,
    const char *at, const char *as);

/* dep_http.c */
int mw_dep_call(mw_dep_name_t *n, const char *method, const char *path,
    const char *body, mw_dep_done_pt done, void *data);
void mw_dep_call_free(mw_dep_call_t *c);
void mw_dep_failed(mw_dep_call_t *c, const char *what);
void mw_dep_error(mw_dep_name_t *n, const char *error, int stop);
void mw_dep_auth(mw_dep_name_t *n, mw_dep_call_t *replay);
void mw_dep_wait(mw_dep_name_t *n, double seconds);

/* dep_sync.c */
void mw_dep_account(mw_dep_name_t *n);
void mw_dep_page(mw_dep_name_t *n);

/* dep_assign.c */
void mw_dep_assign(mw_dep_name_t *n);
void mw_dep_recover(mw_dep_name_t *n);

/* dep_proxy.c */
void mw_dep_job_add(mw_dep_t *dep, const char *json, size_t len);
void mw_dep_job_run(mw_dep_name_t *n);
void mw_dep_job_fail(mw_dep_name_t *n, mw_dep_job_t *job, const char *why);
void mw_dep_job_free(mw_dep_job_t *job);

#endif /* MW_DEP_H */
