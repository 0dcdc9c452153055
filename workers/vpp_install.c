/*
 * Copyright (C) ngx_mdm contributors
 *
 * The "install" and "remove" jobs (V3).  The module wrote the install's
 * hashes and the command; here the serials still to do are associated
 * (or disassociated) in batches of at most /service/config's
 * maxSerialNumbers, each batch's asynchronous event is polled through
 * /status?eventId= with a growing delay until COMPLETE or FAILED, and one
 * script per batch records each serial's outcome (9709 and the rest from
 * failures[].errorInfo.serialNumbers) and queues the command to every
 * associated serial's enrollment.  A remove queues RemoveApplication
 * first, then disassociates.  A restarted leader takes the job up again
 * from mdm:vpp:running: serials done already are not done twice.
 */

#include <stdlib.h>
#include <string.h>

#include "vpp.h"


enum {
    MW_VPP_I_LOAD = 0,
    MW_VPP_I_LOADING,
    MW_VPP_I_BATCH,
    MW_VPP_I_QUEUEING,
    MW_VPP_I_CALL,
    MW_VPP_I_CALLING,
    MW_VPP_I_POLL,
    MW_VPP_I_POLLING,
    MW_VPP_I_RECORDING,
    MW_VPP_I_DONE,
    MW_VPP_I_FINISHING
};


static void mw_vpp_install_loaded(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_vpp_install_queued(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_vpp_install_called(mw_vpp_call_t *c);
static void mw_vpp_install_polled(mw_vpp_call_t *c);
static void mw_vpp_install_record(mw_vpp_loc_t *l, mw_vpp_job_t *job,
    json_t *failures, long errnum, const char *error);
static void mw_vpp_install_recorded(redisAsyncContext *ac, void *reply,
    void *data);
static int mw_vpp_install_redis(mw_vpp_job_t *job, void *reply,
    int again);
static void mw_vpp_install_finished(redisAsyncContext *ac, void *reply,
    void *data);


void
mw_vpp_install_run(mw_vpp_loc_t *l, mw_vpp_job_t *job)
{
    char          now[32], max[32], path[256];
    size_t        i, left;
    json_t       *body, *serials;
    const char   *argv[6], **av;
    mw_conf_t    *conf = &l->vpp->ctx->conf;

    snprintf(now, sizeof(now), "%lld", mw_now_ms());

    switch (job->step) {

    case MW_VPP_I_LOAD:
        job->iid = strdup(json_string_value(json_object_get(job->j,
                                                            "install"))
                          ? json_string_value(json_object_get(job->j,
                                                              "install"))
                          : "");
        if (job->iid == NULL || job->iid[0] == '\0' || strlen(job->iid) > 64) {
            mw_log("error", "vpp %s: job %s has no install id: dropped",
                   l->name, job->id);
            mw_vpp_job_end(l, job);
            return;
        }
        argv[0] = "load";
        argv[1] = job->iid;
        argv[2] = now;
        argv[3] = l->name;
        job->step = MW_VPP_I_LOADING;
        if (mw_vpp_eval(l, MW_LUA_VPP_INSTALL, mw_vpp_install_loaded, job, 4,
                        argv) != 0)
        {
            job->step = MW_VPP_I_LOAD;
        }
        return;

    case MW_VPP_I_BATCH:
        left = json_array_size(job->serials) - job->next_serial;
        if (left == 0 || job->abort) {
            if (left && job->abort) {
                mw_vpp_install_record(l, job, NULL, 0, job->abort);
                return;
            }
            job->step = MW_VPP_I_DONE;
            mw_vpp_install_run(l, job);
            return;
        }

        job->batch = left < (size_t) l->max_serials ? left
                                                    : (size_t) l->max_serials;
        if (!job->remove) {
            job->step = MW_VPP_I_CALL;
            mw_vpp_install_run(l, job);
            return;
        }

        /* a remove: RemoveApplication is queued before the license goes */
        av = calloc(4 + job->batch, sizeof(char *));
        if (av == NULL) {
            mw_vpp_wait(l, 1.);
            return;
        }
        av[0] = "queue";
        av[1] = job->iid;
        av[2] = now;
        av[3] = l->name;
        for (i = 0; i < job->batch; i++) {
            av[4 + i] = json_string_value(json_array_get(job->serials,
                                                         job->next_serial + i));
        }
        job->step = MW_VPP_I_QUEUEING;
        if (mw_vpp_eval(l, MW_LUA_VPP_INSTALL, mw_vpp_install_queued, job,
                        (int) (4 + job->batch), av) != 0)
        {
            job->step = MW_VPP_I_BATCH;
        }
        free(av);
        return;

    case MW_VPP_I_CALL:
        serials = json_array();
        for (i = 0; i < job->batch; i++) {
            json_array_append(serials, json_array_get(job->serials,
                                                      job->next_serial + i));
        }
        body = json_pack("{s:[{s:s,s:s}],s:o}", "assets", "adamId", job->adam,
                         "pricingParam", job->pricing, "serialNumbers",
                         serials);
        job->step = MW_VPP_I_CALLING;
        if (body == NULL
            || mw_vpp_call(l, "POST", job->remove ? "/assets/disassociate"
                                                  : "/assets/associate",
                           body, NULL, mw_vpp_install_called, job) != 0)
        {
            job->step = MW_VPP_I_CALL;
            mw_vpp_wait(l, 1.);
        }
        json_decref(body);
        return;

    case MW_VPP_I_POLL:
        snprintf(path, sizeof(path), "/status?eventId=%.100s", job->event);
        job->step = MW_VPP_I_POLLING;
        if (mw_vpp_call(l, "GET", path, NULL, NULL, mw_vpp_install_polled,
                        job) != 0)
        {
            job->step = MW_VPP_I_POLL;
            mw_vpp_wait(l, 1.);
        }
        return;

    case MW_VPP_I_DONE:
        snprintf(max, sizeof(max), "%ld", conf->vpp_events_max);
        argv[0] = "done";
        argv[1] = job->iid;
        argv[2] = now;
        argv[3] = l->name;
        argv[4] = max;
        argv[5] = job->id;
        job->step = MW_VPP_I_FINISHING;
        if (mw_vpp_eval(l, MW_LUA_VPP_INSTALL, mw_vpp_install_finished, job,
                        6, argv) != 0)
        {
            job->step = MW_VPP_I_DONE;
        }
        return;

    default:
        return;          /* a reply is awaited */
    }
}


/* the location stops (or has no token): what is left fails */

void
mw_vpp_install_abort(mw_vpp_loc_t *l, mw_vpp_job_t *job, const char *why)
{
    if (job->abort == NULL) {
        job->abort = strdup(why);
        if (job->abort == NULL) {
            return;
        }
        mw_log("warn", "vpp %s: install %s: %s", l->name,
               job->iid ? job->iid : job->id, why);
    }

    if (job->step == MW_VPP_I_CALL || job->step == MW_VPP_I_POLL) {
        job->step = MW_VPP_I_BATCH;
    }

    mw_vpp_install_run(l, job);
}


static void
mw_vpp_install_loaded(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         i;
    redisReply    *r = reply, *s;
    mw_vpp_job_t  *job = data;
    mw_vpp_loc_t  *l = job->l;

    (void) ac;

    if (!mw_vpp_done_redis(l, reply) || r->type != REDIS_REPLY_ARRAY
        || r->elements != 5 || r->element[4]->type != REDIS_REPLY_ARRAY)
    {
        job->step = MW_VPP_I_LOAD;
        free(job->iid);
        job->iid = NULL;
        mw_vpp_wait(l, 1.);
        return;
    }

    if (r->element[1]->type != REDIS_REPLY_STRING || r->element[1]->len == 0) {
        mw_log("error", "vpp %s: install %s unknown (or of another "
               "location): job dropped", l->name, job->iid);
        mw_vpp_job_end(l, job);
        mw_vpp_step(l);
        return;
    }

    job->remove = (r->element[0]->len == 6
                   && memcmp(r->element[0]->str, "remove", 6) == 0);
    job->adam = strdup(r->element[1]->str);
    job->pricing = strdup(r->element[2]->type == REDIS_REPLY_STRING
                          && r->element[2]->len ? r->element[2]->str : "STDQ");
    job->serials = json_array();

    s = r->element[4];
    for (i = 0; i < s->elements; i++) {
        if (s->element[i]->type == REDIS_REPLY_STRING) {
            json_array_append_new(job->serials,
                                  json_stringn(s->element[i]->str,
                                               s->element[i]->len));
        }
    }

    if (job->adam == NULL || job->pricing == NULL || job->serials == NULL) {
        mw_vpp_job_end(l, job);
        return;
    }

    mw_log("info", "vpp %s: %s %s of %s: %zu serials, batches of %d",
           l->name, job->remove ? "remove" : "install", job->iid, job->adam,
           json_array_size(job->serials), l->max_serials);

    job->step = MW_VPP_I_BATCH;
    mw_vpp_step(l);
}


/* a script's reply: 1 to go on, else the step again in a second */

static int
mw_vpp_install_redis(mw_vpp_job_t *job, void *reply, int again)
{
    if (mw_vpp_done_redis(job->l, reply)) {
        return 1;
    }

    job->step = again;
    mw_vpp_wait(job->l, 1.);
    return 0;
}


static void
mw_vpp_install_queued(redisAsyncContext *ac, void *reply, void *data)
{
    mw_vpp_job_t  *job = data;

    (void) ac;

    if (mw_vpp_install_redis(job, reply, MW_VPP_I_BATCH)) {
        job->step = MW_VPP_I_CALL;
        mw_vpp_step(job->l);
    }
}


static void
mw_vpp_install_called(mw_vpp_call_t *c)
{
    int            kind;
    const char    *ev;
    mw_vpp_job_t  *job = c->data;
    mw_vpp_loc_t  *l = c->l;
    mw_conf_t     *conf = &l->vpp->ctx->conf;

    ev = json_string_value(json_object_get(c->json, "eventId"));

    if (c->status >= 200 && c->status < 300 && c->errnum == 0 && ev && ev[0]
        && strlen(ev) < 100)
    {
        free(job->event);
        job->event = strdup(ev);
        job->poll = (double) conf->vpp_poll_ms / 1000.;
        job->poll_until = mw_now_ms() + conf->vpp_event_timeout * 1000;
        job->step = MW_VPP_I_POLL;
        mw_vpp_call_free(c);
        mw_vpp_wait(l, job->poll);
        return;
    }

    if (c->status >= 200 && c->status < 300 && c->errnum == 0) {
        snprintf(c->error, sizeof(c->error), "%s %s: no eventId in the "
                 "answer", c->method, c->path);
        c->errnum = -1;
    }

    kind = mw_vpp_failed(c, "associate");
    job->step = MW_VPP_I_CALL;

    if (kind == MW_VPP_STOP) {
        mw_vpp_install_abort(l, job, c->error);

    } else if (kind == MW_VPP_ERROR) {
        /* Apple refused the whole batch: each serial fails with it */
        mw_vpp_install_record(l, job, NULL, c->errnum > 0 ? c->errnum : 0,
                              c->error);
    }

    mw_vpp_call_free(c);
}


static void
mw_vpp_install_polled(mw_vpp_call_t *c)
{
    int            kind;
    long           num;
    json_t        *f;
    const char    *st, *msg;
    mw_vpp_job_t  *job = c->data;
    mw_vpp_loc_t  *l = c->l;
    mw_conf_t     *conf = &l->vpp->ctx->conf;
    char           err[256];

    if (c->status != 200 || c->errnum != 0) {
        kind = mw_vpp_failed(c, "status");
        job->step = MW_VPP_I_POLL;
        if (kind == MW_VPP_STOP) {
            mw_vpp_install_abort(l, job, c->error);
        } else if (kind == MW_VPP_ERROR) {
            mw_vpp_install_record(l, job, NULL,
                                  c->errnum > 0 ? c->errnum : 0, c->error);
        }
        mw_vpp_call_free(c);
        return;
    }

    st = json_string_value(json_object_get(c->json, "eventStatus"));

    if (st && (strcmp(st, "COMPLETE") == 0 || strcmp(st, "FAILED") == 0)) {
        f = json_object_get(c->json, "failures");
        num = 0;
        msg = NULL;
        err[0] = '\0';

        if (strcmp(st, "FAILED") == 0) {
            /* what failed the whole event fails the serials not named */
            num = (long) json_integer_value(json_object_get(
                                  json_array_get(f, 0), "errorNumber"));
            msg = json_string_value(json_object_get(json_array_get(f, 0),
                                                    "errorMessage"));
            snprintf(err, sizeof(err), "the event failed: %ld %.200s", num,
                     msg ? msg : "");
        }

        mw_vpp_install_record(l, job, f, num, err[0] ? err : NULL);
        mw_vpp_call_free(c);
        return;
    }

    mw_vpp_call_free(c);

    if (mw_now_ms() > job->poll_until) {
        snprintf(err, sizeof(err), "event %.100s did not complete within "
                 "%ld s", job->event, conf->vpp_event_timeout);
        mw_vpp_error(l, err, 0, 0);
        mw_vpp_install_record(l, job, NULL, 0, err);
        return;
    }

    job->poll *= 2;
    if (job->poll > (double) conf->vpp_poll_max) {
        job->poll = (double) conf->vpp_poll_max;
    }
    job->step = MW_VPP_I_POLL;
    mw_vpp_wait(l, job->poll);
}


/*
 * The outcome of the batch in flight, into one script: a serial named in
 * failures[].errorInfo.serialNumbers failed with that error; the others
 * failed with "error" when it is given, or are done.
 */

static void
mw_vpp_install_record(mw_vpp_loc_t *l, mw_vpp_job_t *job, json_t *failures,
    long errnum, const char *error)
{
    char         now[32], (*nums)[24];
    size_t       i, k, m, argc;
    json_t      *f, *ser;
    const char  *s, *msg, **argv;

    if (job->abort && job->batch == 0) {
        job->batch = json_array_size(job->serials) - job->next_serial;
    }

    argv = calloc(5 + 3 * job->batch, sizeof(char *));
    nums = calloc(job->batch + 1, sizeof(*nums));
    if (argv == NULL || nums == NULL) {
        free(argv);
        free(nums);
        mw_vpp_wait(l, 1.);
        return;
    }

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    argv[0] = "batch";
    argv[1] = job->iid;
    argv[2] = now;
    argv[3] = l->name;
    argv[4] = job->remove ? "remove" : "install";
    argc = 5;

    for (i = 0; i < job->batch; i++) {
        s = json_string_value(json_array_get(job->serials,
                                             job->next_serial + i));
        argv[argc] = s;
        argv[argc + 1] = "";
        argv[argc + 2] = "";

        if (error || job->abort) {
            snprintf(nums[i], sizeof(nums[i]), "%ld", errnum);
            argv[argc + 1] = nums[i];
            argv[argc + 2] = error ? error : job->abort;
        }

        for (k = 0; json_is_array(failures) && k < json_array_size(failures);
             k++)
        {
            f = json_array_get(failures, k);
            ser = json_object_get(json_object_get(f, "errorInfo"),
                                  "serialNumbers");
            for (m = 0; m < json_array_size(ser); m++) {
                if (s && json_string_value(json_array_get(ser, m))
                    && strcmp(s, json_string_value(json_array_get(ser, m)))
                       == 0)
                {
                    snprintf(nums[i], sizeof(nums[i]), "%ld", (long)
                             json_integer_value(json_object_get(
                                 f, "errorNumber")));
                    msg = json_string_value(json_object_get(f,
                                                            "errorMessage"));
                    argv[argc + 1] = nums[i];
                    argv[argc + 2] = msg ? msg : "failed";
                }
            }
        }

        argc += 3;
    }

    job->step = MW_VPP_I_RECORDING;
    if (mw_vpp_eval(l, MW_LUA_VPP_INSTALL, mw_vpp_install_recorded, job,
                    (int) argc, argv) != 0)
    {
        job->step = MW_VPP_I_BATCH;
        mw_vpp_wait(l, 1.);
    }

    free(argv);
    free(nums);
}


static void
mw_vpp_install_recorded(redisAsyncContext *ac, void *reply, void *data)
{
    mw_vpp_job_t  *job = data;

    (void) ac;

    /* else the batch is done again: Apple keeps a license associated once */
    if (mw_vpp_install_redis(job, reply, MW_VPP_I_BATCH)) {
        job->next_serial += job->batch;
        job->batch = 0;
        job->step = MW_VPP_I_BATCH;
        mw_vpp_step(job->l);
    }
}


static void
mw_vpp_install_finished(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply    *r = reply;
    mw_vpp_job_t  *job = data;
    mw_vpp_loc_t  *l = job->l;

    (void) ac;

    if (!mw_vpp_install_redis(job, reply, MW_VPP_I_DONE)) {
        return;
    }

    mw_log("notice", "vpp %s: install %s: %s", l->name, job->iid,
           r->type == REDIS_REPLY_STRING ? r->str : "?");
    mw_vpp_job_end(l, job);
    mw_vpp_step(l);
}
