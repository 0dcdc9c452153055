/*
 * Copyright (C) ngx_mdm contributors
 *
 * The leader's lease, the lanes' names and the reading of Apple's answers,
 * shared by DEP (dep*.c) and VPP (vpp*.c): each has its own tick script,
 * whose first three arguments are the worker id, the lease in ms ("0":
 * give it up) and how many jobs it may hand over now.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "lane.h"


void
mw_lease_init(mw_lease_t *ls, mw_ctx_t *ctx,
    void (*cb)(struct ev_loop *loop, ev_timer *t, int revents),
    double every, void *data)
{
    ls->ctx = ctx;
    ev_timer_init(&ls->tick, cb, 0., every);
    ls->tick.data = data;
}


void
mw_lease_start(mw_lease_t *ls)
{
    if (!ev_is_active(&ls->tick) && !ls->stopping) {
        ev_timer_again(ls->ctx->loop, &ls->tick);
    }
}


/* stop ticking; another worker takes over at once rather than after the
 * lease: argv[0..2] are filled here, the rest is the script's */

void
mw_lease_release(mw_lease_t *ls, int script, redisCallbackFn *acked,
    void *data, int argc, const char **argv)
{
    mw_ctx_t  *ctx = ls->ctx;

    ls->stopping = 1;
    ev_timer_stop(ctx->loop, &ls->tick);

    if (!ls->leader) {
        return;
    }

    argv[0] = ctx->conf.worker_id;
    argv[1] = "0";
    argv[2] = "0";

    if (mw_redis_eval(&ctx->cmd, script, acked, data, 0, argc, argv) == 0) {
        ls->pending++;
    }
}


/* one tick: renew the lease, ask for at most 20 jobs; argv[0..2] are
 * filled here.  0: sent, the reply goes to cb */

int
mw_lease_tick(mw_lease_t *ls, int script, redisCallbackFn *cb, void *data,
    int jobs_max, int argc, const char **argv)
{
    int        want;
    char       lease[32], jobs[16];
    mw_ctx_t  *ctx = ls->ctx;

    if (ls->ticking || !ctx->cmd.ready) {
        return -1;
    }

    want = jobs_max - ls->njobs;
    if (want > 20) {
        want = 20;
    }

    snprintf(lease, sizeof(lease), "%ld", ctx->conf.heartbeat * 3000);
    snprintf(jobs, sizeof(jobs), "%d", want < 0 ? 0 : want);
    argv[0] = ctx->conf.worker_id;
    argv[1] = lease;
    argv[2] = jobs;

    if (mw_redis_eval(&ctx->cmd, script, cb, data, 0, argc, argv) != 0) {
        return -1;
    }

    ls->ticking = 1;

    return 0;
}


/* the tick's reply: the array, or NULL (an error is logged) */

redisReply *
mw_lease_ticked(mw_lease_t *ls, void *reply, const char *what)
{
    redisReply  *r = reply;

    ls->ticking = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        if (r && r->type == REDIS_REPLY_ERROR) {
            mw_log("error", "%s: tick: %s", what, r->str);
        }
        return NULL;
    }

    return r;
}


/* DEP names (D1) and VPP locations (V1): [A-Za-z0-9._-]{1,64} */

int
mw_lane_name_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > MW_LANE_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_'
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* *dst = a copy of src; len 0: NULL */

void
mw_lane_set(char **dst, const char *src, size_t len)
{
    free(*dst);
    *dst = NULL;

    if (len == 0) {
        return;
    }

    *dst = malloc(len + 1);
    if (*dst) {
        memcpy(*dst, src, len);
        (*dst)[len] = '\0';
    }
}


/* a string of the tick's reply, or "" */

const char *
mw_lane_str(redisReply *r, size_t *len)
{
    if (r->type == REDIS_REPLY_STRING) {
        *len = r->len;
        return r->str;
    }

    *len = 0;
    return "";
}


/*
 * curl's write callback for an answer of Apple: the body grows in *buf
 * (NUL-terminated) up to max; 0 (curl fails the call) past it
 */

size_t
mw_lane_body(char **buf, size_t *len, size_t *size, size_t max,
    const char *ptr, size_t n)
{
    char    *p;
    size_t   want;

    if (*len + n + 1 > *size) {
        want = *size ? *size * 2 : 16384;
        while (want < *len + n + 1) {
            want *= 2;
        }
        if (want > max) {
            return 0;
        }
        p = realloc(*buf, want);
        if (p == NULL) {
            return 0;
        }
        *buf = p;
        *size = want;
    }

    memcpy(*buf + *len, ptr, n);
    *len += n;
    (*buf)[*len] = '\0';

    return n;
}


/* a Retry-After value: seconds or an HTTP date; -1: neither */

long
mw_lane_retry_after(const char *v)
{
    long    s;
    time_t  t;

    if (v[0] >= '0' && v[0] <= '9') {
        return atol(v);
    }

    t = curl_getdate(v, NULL);
    if (t == -1) {
        return -1;
    }

    s = (long) (t - time(NULL));

    return s < 0 ? 0 : s;
}
