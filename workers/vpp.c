/*
 * Copyright (C) ngx_mdm contributors
 *
 * VPP locations: every MW_VPP_TICK seconds one script (worker_vpp_tick.lua)
 * renews this worker's VPP lease, takes the sync-now requests and the jobs
 * (V2), and reads every location's token, config and status, so what the
 * admin API writes applies without a restart.  Each location is a lane:
 * one call to Apple at a time; mw_vpp_step() decides what comes next.
 */

#define _GNU_SOURCE          /* strptime, timegm */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "vpp.h"


static void mw_vpp_tick(struct ev_loop *loop, ev_timer *t, int revents);
static void mw_vpp_ticked(redisAsyncContext *ac, void *reply, void *data);
static void mw_vpp_refresh(mw_vpp_t *vpp, redisReply *list);
static void mw_vpp_job_add(mw_vpp_t *vpp, const char *text, size_t len);
static void mw_vpp_drop_jobs(mw_vpp_t *vpp);
static void mw_vpp_free_loc(mw_vpp_loc_t *l);
static void mw_vpp_expiry(mw_vpp_loc_t *l, long long now);


int
mw_vpp_init(mw_ctx_t *ctx)
{
    unsigned char  r[16];
    mw_vpp_t      *vpp;

    vpp = calloc(1, sizeof(mw_vpp_t));
    if (vpp == NULL) {
        return -1;
    }

    vpp->ctx = ctx;
    ctx->vpp = vpp;
    mw_lease_init(&vpp->lease, ctx, mw_vpp_tick, MW_VPP_TICK, vpp);

    /* a version 4 UUID: offered once, HSETNX keeps the first one made */
    if (RAND_bytes(r, sizeof(r)) != 1) {
        free(vpp);
        ctx->vpp = NULL;
        return -1;
    }
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    snprintf(vpp->uuid, sizeof(vpp->uuid),
             "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
             "%02X%02X%02X%02X%02X%02X", r[0], r[1], r[2], r[3], r[4], r[5],
             r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);

    return 0;
}


void
mw_vpp_start(mw_ctx_t *ctx)
{
    mw_vpp_t  *vpp = ctx->vpp;

    if (vpp) {
        mw_lease_start(&vpp->lease);
    }
}


void
mw_vpp_stop(mw_ctx_t *ctx)
{
    mw_vpp_t      *vpp = ctx->vpp;
    const char    *argv[5];
    mw_vpp_loc_t  *l;

    argv[3] = vpp->uuid;
    argv[4] = "0";
    mw_lease_release(&vpp->lease, MW_LUA_VPP_TICK, mw_vpp_acked, vpp, 5,
                     argv);

    for (l = vpp->locs; l; l = l->next) {
        ev_timer_stop(ctx->loop, &l->wait);
    }
}


int
mw_vpp_idle(mw_ctx_t *ctx)
{
    mw_vpp_t      *vpp = ctx->vpp;
    mw_vpp_loc_t  *l;

    if (vpp->lease.ticking || vpp->lease.pending) {
        return 0;
    }

    for (l = vpp->locs; l; l = l->next) {
        if (l->busy) {
            return 0;
        }
    }

    return 1;
}


void
mw_vpp_cleanup(mw_ctx_t *ctx)
{
    mw_vpp_t      *vpp = ctx->vpp;
    mw_vpp_loc_t  *l, *next;

    if (vpp == NULL) {
        return;
    }

    for (l = vpp->locs; l; l = next) {
        next = l->next;
        mw_vpp_free_loc(l);
    }

    free(vpp);
    ctx->vpp = NULL;
}


static void
mw_vpp_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_vpp_t    *vpp = t->data;
    const char  *argv[5];

    (void) loop;
    (void) revents;

    argv[3] = vpp->uuid;
    argv[4] = vpp->lease.leader ? "0" : "1";

    if (mw_lease_tick(&vpp->lease, MW_LUA_VPP_TICK, mw_vpp_ticked, vpp,
                      MW_VPP_JOBS_MAX, 5, argv) == 0)
    {
        vpp->ticks++;
    }
}


static void
mw_vpp_ticked(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i;
    redisReply    *r, *e;
    mw_vpp_t      *vpp = data;
    mw_vpp_loc_t  *l;

    (void) ac;

    r = mw_lease_ticked(&vpp->lease, reply, "vpp");
    if (r == NULL) {
        return;
    }

    if (r->element[0]->integer != 1 || r->elements != 5) {
        if (vpp->lease.leader) {
            /* another worker has them now, from mdm:vpp:running */
            mw_log("notice", "vpp: no longer the leader");
            mw_vpp_drop_jobs(vpp);
        }
        vpp->lease.leader = 0;
        return;
    }

    if (!vpp->lease.leader) {
        mw_log("notice", "vpp: leader (%s)", vpp->ctx->conf.worker_id);
    }
    vpp->lease.leader = 1;

    e = r->element[1];
    if (e->type == REDIS_REPLY_STRING && e->len < sizeof(vpp->mdm_id)) {
        memcpy(vpp->mdm_id, e->str, e->len);
        vpp->mdm_id[e->len] = '\0';
    }

    mw_vpp_refresh(vpp, r->element[4]);

    e = r->element[3];
    for (i = 0; e->type == REDIS_REPLY_ARRAY && i < e->elements; i++) {
        if (e->element[i]->type == REDIS_REPLY_STRING) {
            mw_vpp_job_add(vpp, e->element[i]->str, e->element[i]->len);
        }
    }

    e = r->element[2];
    for (i = 0; e->type == REDIS_REPLY_ARRAY && i < e->elements; i++) {
        l = mw_vpp_lane(vpp, e->element[i]->str, e->element[i]->len);
        if (l) {
            l->sync_now = 1;
        }
    }

    for (l = vpp->locs; l; l = l->next) {
        mw_vpp_step(l);
    }
}


static void
mw_vpp_refresh(mw_vpp_t *vpp, redisReply *list)
{
    size_t          i, len;
    redisReply     *e;
    const char     *v;
    mw_vpp_loc_t   *l, **pl;

    for (l = vpp->locs; l; l = l->next) {
        l->seen = 0;
    }

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
        e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 7) {
            continue;
        }

        v = mw_lane_str(e->element[0], &len);
        l = mw_vpp_lane(vpp, v, len);
        if (l == NULL) {
            continue;
        }

        l->seen = 1;

        /*
         * a tick sent before the lane wrote its new token or its stop
         * read the old ones: they are not taken back from it
         */
        if (vpp->ticks > l->written) {
            v = mw_lane_str(e->element[1], &len);
            if (l->token == NULL || strlen(l->token) != len
                || memcmp(l->token, v, len) != 0)
            {
                /* a new token: everything is asked for again */
                mw_lane_set(&l->token, v, len);
                l->full = 1;
                l->sync_now = 1;
                l->svc_at = 0;
            }

            v = mw_lane_str(e->element[3], &len);
            l->stopped = (len == 1 && v[0] == '1');

            v = mw_lane_str(e->element[5], &len);
            if (len && atoll(v) > l->warned_at) {
                l->warned_at = atoll(v);
            }
            v = mw_lane_str(e->element[6], &len);
            if (len) {
                l->token_expiry = atoll(v);
            }
        }

        v = mw_lane_str(e->element[2], &len);
        while (len && v[len - 1] == '/') {
            len--;
        }
        mw_lane_set(&l->base_url, len ? v : "https://vpp.itunes.apple.com/mdm/v2",
                   len ? len : 35);

        if (!l->busy && l->phase == MW_VPP_IDLE) {
            v = mw_lane_str(e->element[4], &len);
            mw_lane_set(&l->version_id, v, len);
        }
    }

    /* locations gone from mdm:vpp:names go when their lane is idle */
    for (pl = &vpp->locs; *pl; ) {
        l = *pl;
        if (!l->seen && !l->busy && l->jobs == NULL && l->sync_job == NULL) {
            *pl = l->next;
            mw_vpp_free_loc(l);
            continue;
        }
        pl = &l->next;
    }
}


/* what the lane does next: one thing at a time */

void
mw_vpp_step(mw_vpp_loc_t *l)
{
    long long      now;
    mw_vpp_t      *vpp = l->vpp;
    mw_vpp_job_t  *job;

    if (l->busy || !vpp->lease.leader || vpp->lease.stopping
        || !vpp->ctx->cmd.ready)
    {
        return;
    }

    now = mw_now_ms();

    for (job = l->jobs; job && strcmp(job->op, "token") != 0; job = job->next)
    {
        /* void */
    }

    /*
     * a token job comes first, even during a backoff: the admin waits for
     * it, and a walk with the old token is of no use
     */
    if (job && strcmp(job->op, "token") == 0) {
        ev_timer_stop(vpp->ctx->loop, &l->wait);

        if (job->deadline && job->deadline < now) {
            mw_log("warn", "vpp %s: job %s past its deadline: dropped",
                   l->name, job->id);
            mw_vpp_job_end(l, job);
            mw_vpp_step(l);
            return;
        }
        mw_vpp_token_run(l, job);
        return;
    }

    job = l->jobs;

    if (ev_is_active(&l->wait)) {
        return;
    }

    if (job && (l->stopped || l->token == NULL)) {
        if (strcmp(job->op, "sync") == 0) {
            json_t *b = json_pack("{s:s}", "error", l->stopped
                                  ? "the location is stopped: PUT a new token"
                                  : "the location has no token");
            mw_vpp_reply(vpp, job->id, 409, b);
            json_decref(b);
            mw_vpp_job_end(l, job);
        } else {
            mw_vpp_install_abort(l, job, l->stopped
                                 ? "the location is stopped: PUT a new token"
                                 : "the location has no token");
        }
        return;
    }

    if (l->stopped || l->token == NULL) {
        return;
    }

    mw_vpp_expiry(l, now);

    if (l->svc_at == 0 || now - l->svc_at > 3600000) {
        mw_vpp_service(l);
        return;
    }

    /* a walk under way ends before a job changes what it reads */
    if (l->phase != MW_VPP_IDLE) {
        mw_vpp_page(l);
        return;
    }

    if (job && strcmp(job->op, "sync") == 0) {
        l->jobs = job->next;
        if (l->sync_job) {
            mw_vpp_reply(vpp, job->id, 202, NULL);
            mw_vpp_job_end(l, job);
        } else {
            job->next = NULL;
            l->sync_job = job;
        }
        l->sync_now = 1;
        l->full = 1;
        l->svc_at = 0;       /* the admin asked: limits and mdmInfo too */

    } else if (job) {
        mw_vpp_install_run(l, job);
        return;
    }

    if (l->sync_now || now >= l->next_sync) {
        l->sync_now = 0;
        mw_vpp_sync_start(l);
        mw_vpp_page(l);
    }
}


/* V5: a vpp.token event once a day while the token expires within 15 days */

static void
mw_vpp_expiry(mw_vpp_loc_t *l, long long now)
{
    long long   left;
    mw_vpp_t   *vpp = l->vpp;
    mw_ctx_t   *ctx = vpp->ctx;
    char        t[32], days[32], exp[32], max[32];
    const char *argv[16];

    if (l->token_expiry == 0) {
        return;
    }

    left = l->token_expiry - now / 1000;
    if (left > MW_VPP_WARN_DAYS * 86400LL || now - l->warned_at < 86400000) {
        return;
    }

    l->warned_at = now;
    mw_log("warn", "vpp %s: the content token expires in %lld days: "
           "download a new one from Apple Business Manager", l->name,
           left / 86400);

    snprintf(t, sizeof(t), "%lld", now);
    snprintf(days, sizeof(days), "%lld", left > 0 ? left / 86400 : 0);
    snprintf(exp, sizeof(exp), "%lld", l->token_expiry);
    snprintf(max, sizeof(max), "%ld", ctx->conf.vpp_events_max);

    argv[0] = "XADD";
    argv[1] = MDM_KEY_EVENTS;
    argv[2] = "MAXLEN";
    argv[3] = "~";
    argv[4] = max;
    argv[5] = "*";
    argv[6] = "type"; argv[7] = "vpp.token";
    argv[8] = "vpp_name"; argv[9] = l->name;
    argv[10] = "time"; argv[11] = t;
    argv[12] = "token_expiry"; argv[13] = exp;
    argv[14] = "days_left"; argv[15] = days;

    if (mw_redis_argv(&ctx->cmd, mw_vpp_acked, vpp, 16, argv, NULL) == 0) {
        vpp->lease.pending++;
    }

    if (mw_redis_command(&ctx->cmd, mw_vpp_acked, vpp,
                         "HSET " MDM_KEY_VPP "%s:status token_warned_at %lld",
                         l->name, now) == 0)
    {
        vpp->lease.pending++;
    }
}


/* a job of mdm:vpp:jobs into its location's lane */

static void
mw_vpp_job_add(mw_vpp_t *vpp, const char *text, size_t len)
{
    json_t        *j, *b;
    const char    *id, *name, *op;
    mw_vpp_job_t  *job, **tail;
    mw_vpp_loc_t  *l;
    char           esc[MW_ESC_SIZE];

    j = json_loadb(text, len, 0, NULL);
    id = json_string_value(json_object_get(j, "id"));
    name = json_string_value(json_object_get(j, "name"));
    op = json_string_value(json_object_get(j, "op"));

    if (id == NULL || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32
        || name == NULL || op == NULL
        || (strcmp(op, "token") && strcmp(op, "sync")
            && strcmp(op, "install") && strcmp(op, "remove")))
    {
        mw_log("error", "vpp: job dropped, not a job: %s",
               mw_esc(esc, sizeof(esc), text, len));
        if (id && strlen(id) < 64 && mw_redis_command(&vpp->ctx->cmd,
                mw_vpp_acked, vpp, "HDEL " MDM_KEY_VPP_RUNNING " %s", id) == 0)
        {
            vpp->lease.pending++;
        }
        json_decref(j);
        return;
    }

    l = mw_vpp_lane(vpp, name, strlen(name));
    if (l == NULL) {
        mw_log("error", "vpp: job %s dropped: invalid location name", id);
        b = json_pack("{s:s}", "error", "invalid location name");
        mw_vpp_reply(vpp, id, 400, b);
        json_decref(b);
        if (mw_redis_command(&vpp->ctx->cmd, mw_vpp_acked, vpp,
                             "HDEL " MDM_KEY_VPP_RUNNING " %s", id) == 0)
        {
            vpp->lease.pending++;
        }
        json_decref(j);          /* id is in it */
        return;
    }

    /* a job taken up again after a restart may be in memory already */
    for (job = l->jobs; job; job = job->next) {
        if (strcmp(job->id, id) == 0) {
            json_decref(j);
            return;
        }
    }

    job = calloc(1, sizeof(mw_vpp_job_t));
    if (job == NULL) {
        json_decref(j);
        return;
    }

    memcpy(job->id, id, 32);
    job->l = l;
    snprintf(job->op, sizeof(job->op), "%s", op);
    job->j = j;
    job->deadline = json_integer_value(json_object_get(j, "deadline"));

    for (tail = &l->jobs; *tail; tail = &(*tail)->next) { /* void */ }
    *tail = job;
    vpp->lease.njobs++;
}


/* a job is over: out of the lane, out of mdm:vpp:running */

void
mw_vpp_job_end(mw_vpp_loc_t *l, mw_vpp_job_t *job)
{
    mw_vpp_job_t  **p;
    mw_vpp_t       *vpp = l->vpp;

    for (p = &l->jobs; *p; p = &(*p)->next) {
        if (*p == job) {
            *p = job->next;
            break;
        }
    }

    if (l->sync_job == job) {
        l->sync_job = NULL;
    }

    if (mw_redis_command(&vpp->ctx->cmd, mw_vpp_acked, vpp,
                         "HDEL " MDM_KEY_VPP_RUNNING " %s", job->id) == 0)
    {
        vpp->lease.pending++;
    }

    mw_vpp_job_free(vpp, job);
}


void
mw_vpp_job_free(mw_vpp_t *vpp, mw_vpp_job_t *job)
{
    vpp->lease.njobs--;
    json_decref(job->j);
    json_decref(job->client);
    json_decref(job->serials);
    free(job->mdm_id);
    free(job->notify_url);
    free(job->notify_token);
    free(job->iid);
    free(job->adam);
    free(job->pricing);
    free(job->event);
    free(job->abort);
    free(job);
}


/* the leadership is lost: the jobs stay in mdm:vpp:running for the next */

static void
mw_vpp_drop_jobs(mw_vpp_t *vpp)
{
    mw_vpp_job_t  *job, *next;
    mw_vpp_loc_t  *l;

    for (l = vpp->locs; l; l = l->next) {
        if (l->busy) {
            continue;      /* the call's callback still holds its job */
        }
        for (job = l->jobs; job; job = next) {
            next = job->next;
            mw_vpp_job_free(vpp, job);
        }
        l->jobs = NULL;
        if (l->sync_job) {
            mw_vpp_job_free(vpp, l->sync_job);
            l->sync_job = NULL;
        }
        l->phase = MW_VPP_IDLE;
    }
}


/* V2: SET mdm:vpp:reply:ID {"status", "body"} EX 120 */

void
mw_vpp_reply(mw_vpp_t *vpp, const char *id, int status, json_t *body)
{
    char    *s;
    json_t  *r;

    /* "o" takes the reference made here */
    r = json_pack("{s:i,s:o}", "status", status, "body",
                  body ? json_incref(body) : json_object());
    s = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);

    if (s && mw_redis_command(&vpp->ctx->cmd, mw_vpp_acked, vpp,
                              "SET " MDM_KEY_VPP_REPLY "%s %s EX 120", id,
                              s) == 0)
    {
        vpp->lease.pending++;
    }

    free(s);
}


void
mw_vpp_acked(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_vpp_t    *vpp = data;

    (void) ac;

    vpp->lease.pending--;

    if (r && r->type == REDIS_REPLY_ERROR) {
        mw_log("error", "vpp: redis: %s", r->str);
    }
}


/* EVALSHA of a VPP script for the lane; the lane is busy until the reply */

int
mw_vpp_eval(mw_vpp_loc_t *l, int script, redisCallbackFn *cb, void *data,
    int argc, const char **argv)
{
    mw_ctx_t  *ctx = l->vpp->ctx;

    if (mw_redis_eval(&ctx->cmd, script, cb, data, 0, argc, argv) != 0) {
        return -1;
    }

    l->busy++;
    l->vpp->lease.pending++;

    return 0;
}


/* the reply of mw_vpp_eval(): 1 if it went well */

int
mw_vpp_done_redis(mw_vpp_loc_t *l, void *reply)
{
    redisReply  *r = reply;

    l->busy--;
    l->vpp->lease.pending--;

    if (r && r->type == REDIS_REPLY_ERROR) {
        mw_log("error", "vpp %s: redis: %s", l->name, r->str);
    }

    return r != NULL && r->type != REDIS_REPLY_ERROR;
}


void
mw_vpp_random_hex(char *out, size_t bytes)
{
    size_t         i;
    unsigned char  r[64];

    if (bytes > sizeof(r)) {
        bytes = sizeof(r);
    }

    if (RAND_bytes(r, (int) bytes) != 1) {
        memset(r, 0, bytes);
    }

    for (i = 0; i < bytes; i++) {
        snprintf(out + i * 2, 3, "%02x", r[i]);
    }
}


/* Apple's dates: "2030-11-08T22:33:22+0000" (or Z); unix s, 0: none */

long long
mw_vpp_date(const char *s)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(tm));

    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
        return 0;
    }

    return (long long) timegm(&tm);
}


mw_vpp_loc_t *
mw_vpp_lane(mw_vpp_t *vpp, const char *name, size_t len)
{
    mw_vpp_loc_t  *l;

    /* V1: [A-Za-z0-9._-]{1,64} */
    if (!mw_lane_name_ok(name, len)) {
        return NULL;
    }

    for (l = vpp->locs; l; l = l->next) {
        if (strlen(l->name) == len && memcmp(l->name, name, len) == 0) {
            return l;
        }
    }

    l = calloc(1, sizeof(mw_vpp_loc_t));
    if (l == NULL) {
        return NULL;
    }

    memcpy(l->name, name, len);
    l->vpp = vpp;
    l->full = 1;
    l->max_serials = 1000;
    ev_timer_init(&l->wait, NULL, 0., 0.);
    l->next = vpp->locs;
    vpp->locs = l;

    return l;
}


static void
mw_vpp_free_loc(mw_vpp_loc_t *l)
{
    mw_vpp_job_t  *job, *next;

    ev_timer_stop(l->vpp->ctx->loop, &l->wait);

    for (job = l->jobs; job; job = next) {
        next = job->next;
        mw_vpp_job_free(l->vpp, job);
    }

    if (l->sync_job) {
        mw_vpp_job_free(l->vpp, l->sync_job);
    }

    free(l->token);
    free(l->base_url);
    free(l->version_id);
    free(l->walk_version);
    free(l);
}
