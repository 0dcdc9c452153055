/*
 * Copyright (C) ngx_mdm contributors
 *
 * Auto-assign: the page script queues serials (mdm:dep:NAME:assignq, a
 * zset by due time); here batches of at most 1,000 (or /account's limit)
 * move to mdm:dep:NAME:assigning, go to Apple (PUT /profile/devices), and
 * their per-serial results are recorded (worker_dep_assign.lua):
 * THROTTLED waits retry_after_seconds (or dep_throttle_cooldown), FAILED
 * is retried with backoff, NOT_ACCESSIBLE is recorded and not retried.
 *
 * A worker killed with a batch out leaves it in "assigning": before
 * anything else the next one asks Apple (POST /devices) which of them
 * carry the profile already, records those as done and queues the rest
 * again, so no device is assigned twice and none is forgotten.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dep.h"


typedef struct {
    mw_dep_name_t  *n;
    char           *profile;
    char          **serials;
    char          **profiles;     /* recovery: each serial's target */
    size_t          count;
} mw_dep_batch_t;


static void mw_dep_taken(redisAsyncContext *ac, void *reply, void *data);
static void mw_dep_assigned(mw_dep_call_t *c);
static void mw_dep_inflight(redisAsyncContext *ac, void *reply, void *data);
static void mw_dep_checked(mw_dep_call_t *c);
static void mw_dep_results(mw_dep_batch_t *b, json_t *devices,
    long throttle_ms, int recover);
static void mw_dep_settled(redisAsyncContext *ac, void *reply, void *data);
static mw_dep_batch_t *mw_dep_batch(mw_dep_name_t *n, redisReply *r,
    size_t from, size_t step);
static void mw_dep_batch_free(mw_dep_batch_t *b);
static int mw_dep_send_batch(mw_dep_batch_t *b, const char *method,
    const char *path, mw_dep_done_pt done);


void
mw_dep_assign(mw_dep_name_t *n)
{
    char         now[24], max[24];
    const char  *argv[4];

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(max, sizeof(max), "%d", n->assign_limit);
    argv[0] = n->name;
    argv[1] = now;
    argv[2] = "take";
    argv[3] = max;

    if (mw_dep_eval(n, MW_LUA_DEP_ASSIGN, mw_dep_taken, 4, argv) != 0) {
        mw_dep_wait(n, 1.);
    }
}


static void
mw_dep_taken(redisAsyncContext *ac, void *reply, void *data)
{
    int              ok;
    redisReply      *r = reply;
    mw_dep_name_t   *n;
    mw_dep_batch_t  *b;

    (void) ac;

    n = mw_dep_done_redis(reply, data, &ok);

    if (!ok || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        /* nothing due (yet): the next tick tells when */
        n->assign_due = 0;
        if (!ok) {
            mw_dep_wait(n, 1.);
        }
        mw_dep_step(n);
        return;
    }

    b = mw_dep_batch(n, r, 1, 1);
    if (b == NULL) {
        mw_dep_wait(n, 1.);
        return;
    }

    mw_lane_set(&b->profile, r->element[0]->str, r->element[0]->len);

    if (mw_dep_send_batch(b, "PUT", "/profile/devices", mw_dep_assigned)
        != 0)
    {
        /* they stay in "assigning": the recovery settles them */
        n->recovered = 0;
        n->assigning = 1;
        mw_dep_batch_free(b);
        mw_dep_wait(n, 1.);
    }
}


static void
mw_dep_assigned(mw_dep_call_t *c)
{
    json_t          *j, *ra;
    long             throttle;
    mw_dep_batch_t  *b = c->data;
    mw_dep_name_t   *n = c->n;

    j = (c->status == 200) ? json_loads(c->resp, 0, NULL) : NULL;

    if (!json_is_object(json_object_get(j, "devices"))) {
        if (c->replayed != 2) {
            mw_dep_failed(c, "PUT /profile/devices");
        }
        json_decref(j);
        mw_dep_call_free(c);
        mw_dep_results(b, NULL, 0, 0);
        return;
    }

    ra = json_object_get(j, "retry_after_seconds");
    throttle = json_is_integer(ra) && json_integer_value(ra) > 0
               ? (long) json_integer_value(ra) * 1000
               : n->dep->ctx->conf.dep_throttle_cooldown * 1000;

    mw_dep_call_free(c);
    mw_dep_results(b, json_object_get(j, "devices"), throttle, 0);
    json_decref(j);
}


void
mw_dep_recover(mw_dep_name_t *n)
{
    char         now[24];
    const char  *argv[3];

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    argv[0] = n->name;
    argv[1] = now;
    argv[2] = "inflight";

    if (mw_dep_eval(n, MW_LUA_DEP_ASSIGN, mw_dep_inflight, 3, argv) != 0) {
        mw_dep_wait(n, 1.);
    }
}


static void
mw_dep_inflight(redisAsyncContext *ac, void *reply, void *data)
{
    int              ok;
    redisReply      *r = reply;
    mw_dep_name_t   *n;
    mw_dep_batch_t  *b;

    (void) ac;

    n = mw_dep_done_redis(reply, data, &ok);

    if (!ok || r->type != REDIS_REPLY_ARRAY) {
        mw_dep_wait(n, 1.);
        return;
    }

    if (r->elements < 2) {
        n->recovered = 1;
        n->assigning = 0;
        mw_dep_step(n);
        return;
    }

    b = mw_dep_batch(n, r, 0, 2);
    if (b == NULL
        || mw_dep_send_batch(b, "POST", "/devices", mw_dep_checked) != 0)
    {
        mw_dep_batch_free(b);
        mw_dep_wait(n, 1.);
        return;
    }

    mw_log("notice", "dep %s: %zu assignments were in flight at the last "
           "stop: checking them with Apple", n->name, b->count);
}


static void
mw_dep_checked(mw_dep_call_t *c)
{
    json_t          *j;
    mw_dep_batch_t  *b = c->data;
    mw_dep_name_t   *n = c->n;

    j = (c->status == 200) ? json_loads(c->resp, 0, NULL) : NULL;

    if (!json_is_object(json_object_get(j, "devices"))) {
        if (c->replayed != 2) {
            mw_dep_failed(c, "POST /devices");
        }
        json_decref(j);
        mw_dep_call_free(c);
        mw_dep_batch_free(b);
        mw_dep_step(n);
        return;
    }

    mw_dep_call_free(c);
    n->recovered = 1;
    n->assigning = 0;
    mw_dep_results(b, json_object_get(j, "devices"), 0, 1);
    json_decref(j);
}


/*
 * Records a batch's results; devices NULL: the call failed, all go back.
 * recover: "devices" is POST /devices's answer, a serial already carrying
 * its profile is a SUCCESS, the others go back.
 */

static void
mw_dep_results(mw_dep_batch_t *b, json_t *devices, long throttle_ms,
    int recover)
{
    char            now[24], thr[24], base[24], max[24], tries[24];
    size_t          i, k;
    json_t         *d;
    mw_conf_t      *conf;
    const char    **argv, *res, *pu, *ps;
    mw_dep_name_t  *n = b->n;

    conf = &n->dep->ctx->conf;
    argv = calloc(8 + 2 * b->count, sizeof(char *));
    if (argv == NULL) {
        mw_dep_batch_free(b);
        mw_dep_wait(n, 1.);
        return;
    }

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(thr, sizeof(thr), "%ld", throttle_ms);
    snprintf(base, sizeof(base), "%ld", conf->dep_assign_backoff * 1000);
    snprintf(max, sizeof(max), "%ld", 86400000L);
    snprintf(tries, sizeof(tries), "%d", conf->dep_assign_retries);

    k = 0;
    argv[k++] = n->name;
    argv[k++] = now;
    argv[k++] = "done";
    argv[k++] = thr;
    argv[k++] = base;
    argv[k++] = max;
    argv[k++] = tries;
    argv[k++] = b->profile ? b->profile : "";

    for (i = 0; i < b->count; i++) {
        d = devices ? json_object_get(devices, b->serials[i]) : NULL;
        res = "BACK";

        if (recover && d) {
            pu = json_string_value(json_object_get(d, "profile_uuid"));
            ps = json_string_value(json_object_get(d, "profile_status"));
            if (pu && ps && strcmp(pu, b->profiles[i]) == 0
                && (strcmp(ps, "assigned") == 0 || strcmp(ps, "pushed") == 0))
            {
                res = "SUCCESS";
            }

        } else if (d) {
            /* a serial Apple did not answer for is a FAILED */
            res = json_is_string(d) ? json_string_value(d) : "FAILED";
        } else if (devices) {
            res = "FAILED";
        }

        argv[k++] = b->serials[i];
        argv[k++] = res;
    }

    if (mw_dep_eval(n, MW_LUA_DEP_ASSIGN, mw_dep_settled, (int) k, argv)
        != 0)
    {
        /* they stay in "assigning": the recovery settles them */
        n->recovered = 0;
        n->assigning = 1;
        mw_dep_wait(n, 1.);
    }

    free(argv);
    mw_dep_batch_free(b);
}


static void
mw_dep_settled(redisAsyncContext *ac, void *reply, void *data)
{
    int             ok;
    redisReply     *r = reply;
    mw_dep_name_t  *n;

    (void) ac;

    n = mw_dep_done_redis(reply, data, &ok);

    if (!ok) {
        n->recovered = 0;
        n->assigning = 1;
        mw_dep_wait(n, 1.);
        return;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 5) {
        mw_log("info", "dep %s: assigned: %lld SUCCESS, %lld THROTTLED, "
               "%lld FAILED, %lld NOT_ACCESSIBLE, %lld put back", n->name,
               r->element[0]->integer, r->element[1]->integer,
               r->element[2]->integer, r->element[3]->integer,
               r->element[4]->integer);
    }

    /* more may be due at once: the take says */
    n->assign_due = mw_now_ms();
    mw_dep_step(n);
}


/* serials from r->element[from], every step-th; with step 2 the profile
 * of each follows it */

static mw_dep_batch_t *
mw_dep_batch(mw_dep_name_t *n, redisReply *r, size_t from, size_t step)
{
    size_t           i;
    mw_dep_batch_t  *b;

    b = calloc(1, sizeof(mw_dep_batch_t));
    if (b == NULL) {
        return NULL;
    }

    b->n = n;
    b->serials = calloc(r->elements, sizeof(char *));
    b->profiles = calloc(r->elements, sizeof(char *));
    if (b->serials == NULL || b->profiles == NULL) {
        mw_dep_batch_free(b);
        return NULL;
    }

    for (i = from; i + step - 1 < r->elements; i += step) {
        b->serials[b->count] = strdup(r->element[i]->str);
        b->profiles[b->count] = strdup(step == 2 ? r->element[i + 1]->str
                                                 : r->element[0]->str);
        if (b->serials[b->count] == NULL || b->profiles[b->count] == NULL) {
            free(b->serials[b->count]);
            free(b->profiles[b->count]);
            mw_dep_batch_free(b);
            return NULL;
        }
        b->count++;
    }

    if (step == 2 && b->count) {
        mw_lane_set(&b->profile, b->profiles[0], strlen(b->profiles[0]));
    }

    return b;
}


static int
mw_dep_send_batch(mw_dep_batch_t *b, const char *method, const char *path,
    mw_dep_done_pt done)
{
    int      rc;
    char    *body;
    size_t   i;
    json_t  *j, *list;

    j = json_object();
    list = json_array();
    if (j == NULL || list == NULL) {
        json_decref(j);
        json_decref(list);
        return -1;
    }

    for (i = 0; i < b->count; i++) {
        json_array_append_new(list, json_string(b->serials[i]));
    }

    json_object_set_new(j, "devices", list);
    if (done == mw_dep_assigned) {
        json_object_set_new(j, "profile_uuid", json_string(b->profile));
    }

    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);

    rc = body ? mw_dep_call(b->n, method, path, body, done, b) : -1;
    free(body);

    return rc;
}


static void
mw_dep_batch_free(mw_dep_batch_t *b)
{
    size_t  i;

    if (b == NULL) {
        return;
    }

    for (i = 0; i < b->count; i++) {
        free(b->serials[i]);
        free(b->profiles[i]);
    }

    free(b->serials);
    free(b->profiles);
    free(b->profile);
    free(b);
}
