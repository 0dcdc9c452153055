/*
 * Copyright (C) ngx_mdm contributors
 *
 * Apps and Books (VPP), the worker's side, shared by its files:
 *   vpp.c         the locations (one lane each), the tick that reads them
 *                 from Redis and takes the jobs, what a lane does next
 *   vpp_http.c    one call to Apple's App and Book Management API v2:
 *                 the Bearer token, the error in every body (a 200 too),
 *                 stops, backoff, tokenExpirationDate
 *   vpp_token.c   the "token" job: validation, mdmInfo, the reply
 *   vpp_sync.c    /service/config, /assets and /assignments walks
 *   vpp_install.c the "install" / "remove" jobs: batches, events, queueing
 * and the scripts ngx_mdm_module/lua/worker_vpp_*.lua.  Contracts V1-V5
 * (HELPERS.md, README "VPP: the worker").
 */

#ifndef MW_VPP_H
#define MW_VPP_H

#include <jansson.h>

#include "lane.h"


#define MW_VPP_NAME_MAX     64
#define MW_VPP_BODY_MAX     (64 * 1024 * 1024)
#define MW_VPP_JOBS_MAX     200       /* jobs held in memory */
#define MW_VPP_TICK         0.25      /* seconds */
#define MW_VPP_WARN_DAYS    15        /* Apple's tokenExpirationDate window */

enum {
    MW_VPP_IDLE = 0,
    MW_VPP_ASSETS,
    MW_VPP_CLEAR,           /* before a full walk: a cut-off one's leftovers */
    MW_VPP_ASSIGNMENTS,
    MW_VPP_SWAP             /* after a full walk: its sets swapped in */
};

/* what a failed call does to the lane */
enum { MW_VPP_OK = 0, MW_VPP_ERROR, MW_VPP_BACKOFF, MW_VPP_STOP };

typedef struct mw_vpp_s       mw_vpp_t;
typedef struct mw_vpp_loc_s   mw_vpp_loc_t;
typedef struct mw_vpp_call_s  mw_vpp_call_t;
typedef struct mw_vpp_job_s   mw_vpp_job_t;

typedef void (*mw_vpp_done_pt)(mw_vpp_call_t *c);


/* one call to Apple, in the location's lane */
struct mw_vpp_call_s {
    mw_vpp_loc_t    *l;
    mw_http_t       *http;
    const char      *method;
    char            *path;
    char            *body;        /* NULL: none */
    char            *bearer;      /* NULL: the location's token */
    char            *resp;
    size_t           resp_len;
    size_t           resp_size;
    json_t          *json;        /* the body, when a JSON object */
    long             errnum;      /* its errorNumber; 0: none */
    char             error[512];  /* what went wrong, for logs and status */
    long             retry_after; /* seconds; -1: none */
    long             status;
    mw_vpp_done_pt   done;
    void            *data;
};


/* a job of mdm:vpp:jobs (V2) */
struct mw_vpp_job_s {
    mw_vpp_job_t    *next;
    mw_vpp_loc_t    *l;
    char             id[33];
    char             op[16];
    json_t          *j;
    long long        deadline;
    int              step;

    /* token */
    char            *mdm_id;
    char            *notify_url;
    char            *notify_token;
    json_t          *client;      /* GET /client/config's answer */

    /* install, remove */
    char            *iid;
    char            *adam;
    char            *pricing;
    int              remove;
    json_t          *serials;     /* array of the serials to do */
    size_t           next_serial;
    size_t           batch;       /* serials in the batch in flight */
    char            *abort;       /* why what is left fails */
    char            *event;
    double           poll;
    long long        poll_until;
};


struct mw_vpp_loc_s {
    mw_vpp_loc_t    *next;
    mw_vpp_t        *vpp;
    char             name[MW_VPP_NAME_MAX + 1];
    int              seen;

    /* V1, as of the last tick */
    char            *token;
    char            *base_url;
    int              stopped;
    unsigned         written;     /* the tick in flight when the lane
                                     wrote its token or stop itself */
    long long        token_expiry;  /* unix s */
    long long        warned_at;   /* ms: the last vpp.token event */
    char            *version_id;

    /* the lane */
    int              busy;
    ev_timer         wait;
    double           backoff;
    int              max_serials; /* /service/config's maxSerialNumbers */
    long long        svc_at;
    int              sync_now;
    int              full;        /* the next walk is a full one */
    long long        next_sync;
    long long        next_full;
    int              phase;
    int              delta;       /* the walk of assignments is a delta */
    long             page;
    char            *walk_version;
    long long        walk_assets;
    mw_vpp_job_t    *jobs;
    mw_vpp_job_t    *sync_job;    /* a "sync" job waiting for its walk */
};


struct mw_vpp_s {
    mw_ctx_t        *ctx;
    mw_vpp_loc_t    *locs;
    mw_lease_t       lease;
    unsigned         ticks;       /* ticks sent so far */
    char             mdm_id[37];  /* mdm:vpp:mdminfo id (V1) */
    char             uuid[37];    /* the one we offer if there is none */
};


/* vpp.c */
mw_vpp_loc_t *mw_vpp_lane(mw_vpp_t *vpp, const char *name, size_t len);
void mw_vpp_step(mw_vpp_loc_t *l);
int mw_vpp_eval(mw_vpp_loc_t *l, int script, redisCallbackFn *cb,
    void *data, int argc, const char **argv);
int mw_vpp_done_redis(mw_vpp_loc_t *l, void *reply);
void mw_vpp_acked(redisAsyncContext *ac, void *reply, void *data);
void mw_vpp_job_free(mw_vpp_t *vpp, mw_vpp_job_t *job);
void mw_vpp_job_end(mw_vpp_loc_t *l, mw_vpp_job_t *job);
void mw_vpp_reply(mw_vpp_t *vpp, const char *id, int status, json_t *body);
void mw_vpp_random_hex(char *out, size_t bytes);
long long mw_vpp_date(const char *s);

/* apns.c */
long long mw_now_ms(void);

/* vpp_http.c */
int mw_vpp_call(mw_vpp_loc_t *l, const char *method, const char *path,
    json_t *body, const char *bearer, mw_vpp_done_pt done, void *data);
void mw_vpp_call_free(mw_vpp_call_t *c);
int mw_vpp_failed(mw_vpp_call_t *c, const char *what);
void mw_vpp_error(mw_vpp_loc_t *l, const char *error, long errnum, int stop);
void mw_vpp_wait(mw_vpp_loc_t *l, double seconds);

/* vpp_token.c */
void mw_vpp_token_run(mw_vpp_loc_t *l, mw_vpp_job_t *job);

/* vpp_sync.c */
void mw_vpp_service(mw_vpp_loc_t *l);
void mw_vpp_sync_start(mw_vpp_loc_t *l);
void mw_vpp_page(mw_vpp_loc_t *l);
void mw_vpp_sync_reply(mw_vpp_loc_t *l, int status, const char *error);

/* vpp_install.c */
void mw_vpp_install_run(mw_vpp_loc_t *l, mw_vpp_job_t *job);
void mw_vpp_install_abort(mw_vpp_loc_t *l, mw_vpp_job_t *job,
    const char *why);

#endif /* MW_VPP_H */
