/*
 * Copyright (C) ngx_mdm contributors
 *
 * The admin API's DEP calls (contract D4): the module RPUSHes a job on
 * mdm:dep:proxy, the tick takes a few, each runs in its name's lane (one
 * call at a time, the lane's session, re-auth and replay), and Apple's
 * answer goes to mdm:dep:proxy:reply:ID (EX 120) for the module to poll.
 * A job past its deadline is dropped unanswered: the module has answered
 * 504 already.  Jobs held by a worker that dies are lost the same way.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dep.h"


static void mw_dep_proxied(mw_dep_call_t *c);
static void mw_dep_reply(mw_dep_t *dep, const char *id, long status,
    const char *body, size_t len, const char *ctype, const char *error);
static void mw_dep_replied(redisAsyncContext *ac, void *reply, void *data);
static int mw_dep_job_ok(const char *id, const char *method,
    const char *path);


void
mw_dep_job_add(mw_dep_t *dep, const char *text, size_t len)
{
    json_t          *j;
    const char      *id, *name, *method, *path, *body;
    mw_dep_job_t    *job, **tail;
    mw_dep_name_t   *n;
    json_error_t     err;
    char             esc[MW_ESC_SIZE];

    j = json_loadb(text, len, 0, &err);
    id = json_string_value(json_object_get(j, "id"));
    name = json_string_value(json_object_get(j, "name"));
    method = json_string_value(json_object_get(j, "method"));
    path = json_string_value(json_object_get(j, "path"));
    body = json_string_value(json_object_get(j, "body"));

    if (!mw_dep_job_ok(id, method, path) || name == NULL
        || !json_is_integer(json_object_get(j, "deadline")))
    {
        mw_log("error", "dep: proxy job dropped, not a job: %s",
               mw_esc(esc, sizeof(esc), text, len));
        if (id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32) {
            mw_dep_reply(dep, id, 0, "", 0, "", "invalid proxy job");
        }
        json_decref(j);
        return;
    }

    n = mw_dep_lane(dep, name, strlen(name));
    if (n == NULL) {
        mw_dep_reply(dep, id, 0, "", 0, "", "invalid DEP name");
        json_decref(j);
        return;
    }

    job = calloc(1, sizeof(mw_dep_job_t));
    if (job == NULL) {
        json_decref(j);
        return;
    }

    memcpy(job->id, id, 32);
    job->method = strdup(method);
    job->path = strdup(path);
    job->body = (body && body[0]) ? strdup(body) : NULL;
    job->deadline = json_integer_value(json_object_get(j, "deadline"));
    json_decref(j);

    if (!job->method || !job->path) {
        mw_dep_job_free(job);
        return;
    }

    for (tail = &n->jobs; *tail; tail = &(*tail)->next) { /* void */ }
    *tail = job;
    dep->lease.njobs++;
}


static int
mw_dep_job_ok(const char *id, const char *method, const char *path)
{
    static const char  *methods[] = { "GET", "POST", "PUT", "DELETE",
                                      "PATCH", NULL };
    const char        **m;

    if (id == NULL || strlen(id) != 32
        || strspn(id, "0123456789abcdef") != 32 || method == NULL
        || path == NULL || path[0] != '/' || strlen(path) > 1024
        || strpbrk(path, " \r\n\t") != NULL)
    {
        return 0;
    }

    for (m = methods; *m; m++) {
        if (strcmp(*m, method) == 0) {
            return 1;
        }
    }

    return 0;
}


void
mw_dep_job_run(mw_dep_name_t *n)
{
    mw_dep_job_t  *job = n->jobs;

    n->jobs = job->next;
    job->next = NULL;

    if (job->deadline < mw_now_ms()) {
        mw_log("warn", "dep %s: proxy job %s past its deadline: dropped",
               n->name, job->id);
        n->dep->lease.njobs--;
        mw_dep_job_free(job);
        mw_dep_step(n);
        return;
    }

    if (mw_dep_call(n, job->method, job->path, job->body, mw_dep_proxied,
                    job) != 0)
    {
        job->next = n->jobs;
        n->jobs = job;
        mw_dep_job_fail(n, job, "out of memory");
    }
}


static void
mw_dep_proxied(mw_dep_call_t *c)
{
    mw_dep_job_t   *job = c->data;
    mw_dep_name_t  *n = c->n;

    if (c->replayed == 2) {
        mw_dep_reply(n->dep, job->id, 0, "", 0, "",
                     "no DEP session: GET /session failed");
    } else if (c->status == 0) {
        mw_dep_reply(n->dep, job->id, 0, "", 0, "", c->ctype);
    } else {
        mw_dep_reply(n->dep, job->id, c->status, c->resp, c->resp_len,
                     c->ctype, NULL);

        /* the terms apply to every call: the name stops */
        if (c->status == 403 && strstr(c->resp, "T_C_NOT_SIGNED")) {
            mw_dep_failed(c, job->path);
        }
    }

    n->dep->lease.njobs--;
    mw_dep_job_free(job);
    mw_dep_call_free(c);
    mw_dep_step(n);
}


/* answers the lane's first job with an error of ours */

void
mw_dep_job_fail(mw_dep_name_t *n, mw_dep_job_t *job, const char *why)
{
    n->jobs = job->next;
    mw_dep_reply(n->dep, job->id, 0, "", 0, "", why);
    n->dep->lease.njobs--;
    mw_dep_job_free(job);
    mw_dep_step(n);
}


void
mw_dep_job_free(mw_dep_job_t *job)
{
    free(job->method);
    free(job->path);
    free(job->body);
    free(job);
}


static void
mw_dep_reply(mw_dep_t *dep, const char *id, long status, const char *body,
    size_t len, const char *ctype, const char *error)
{
    char    *text;
    json_t  *j, *b;

    b = json_stringn(body, len);
    if (b == NULL) {
        b = json_string("");
        error = "Apple's answer is not UTF-8 text";
    }

    j = json_pack("{s:I, s:o, s:s}", "status", (json_int_t) status,
                  "body", b, "content_type", ctype);
    if (j && error) {
        json_object_set_new(j, "error", json_string(error));
    }

    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (text == NULL) {
        return;
    }

    if (mw_redis_command(&dep->ctx->cmd, mw_dep_replied, dep,
                         "SET " MDM_KEY_DEP_PROXY_REPLY "%s %s EX 120",
                         id, text) == 0)
    {
        dep->lease.pending++;
    }

    free(text);
}


static void
mw_dep_replied(redisAsyncContext *ac, void *reply, void *data)
{
    mw_dep_t  *dep = data;

    (void) ac;
    (void) reply;

    dep->lease.pending--;
}
