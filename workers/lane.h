/*
 * Copyright (C) ngx_mdm contributors
 *
 * What DEP and VPP share: one worker at a time leads (a lease renewed by a
 * tick script), each name is a lane of calls to Apple.  mw_lease_t is the
 * leader's side (embedded in mw_dep_t and mw_vpp_t); the mw_lane_*
 * helpers are for the lanes' names and what the tick read of them.
 */

#ifndef MW_LANE_H
#define MW_LANE_H

#include "mdm_worker.h"


#define MW_LANE_NAME_MAX    64


typedef struct {
    mw_ctx_t        *ctx;
    ev_timer         tick;
    int              ticking;     /* the tick script's reply awaited */
    int              pending;     /* other Redis replies awaited */
    int              leader;
    int              njobs;       /* jobs held in memory */
    int              stopping;
} mw_lease_t;


void mw_lease_init(mw_lease_t *ls, mw_ctx_t *ctx,
    void (*cb)(struct ev_loop *loop, ev_timer *t, int revents),
    double every, void *data);
void mw_lease_start(mw_lease_t *ls);
void mw_lease_release(mw_lease_t *ls, int script, redisCallbackFn *acked,
    void *data, int argc, const char **argv);
int mw_lease_tick(mw_lease_t *ls, int script, redisCallbackFn *cb,
    void *data, int jobs_max, int argc, const char **argv);
redisReply *mw_lease_ticked(mw_lease_t *ls, void *reply, const char *what);

int mw_lane_name_ok(const char *s, size_t len);
void mw_lane_set(char **dst, const char *src, size_t len);
const char *mw_lane_str(redisReply *r, size_t *len);
size_t mw_lane_body(char **buf, size_t *len, size_t *size, size_t max,
    const char *ptr, size_t n);
long mw_lane_retry_after(const char *v);

#endif /* MW_LANE_H */
