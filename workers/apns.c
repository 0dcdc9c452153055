/*
 * Copyright (C) ngx_mdm contributors
 *
 * APNs pushes.  Jobs are enrollment ids in the Redis list mdm:push; each is
 * moved atomically to this worker's processing list and removed from it
 * only once its result is recorded, so a SIGKILL loses nothing: the list is
 * put back at the next start (or by another worker once this one's
 * heartbeat has expired).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "apns.h"


static void mw_apns_taken(redisAsyncContext *ac, void *reply, void *data);
static void mw_apns_popped(redisAsyncContext *ac, void *reply, void *data);
static mw_job_t *mw_apns_job(mw_apns_t *a, const char *id);
static void mw_apns_start_job(mw_job_t *job);
static void mw_apns_info(redisAsyncContext *ac, void *reply, void *data);
static void mw_apns_retry_timer(struct ev_loop *loop, ev_timer *t,
    int revents);
static void mw_apns_recorded(redisAsyncContext *ac, void *reply, void *data);
static void mw_apns_free(mw_job_t *job);
static void mw_apns_retake(struct ev_loop *loop, ev_timer *t, int revents);
static int mw_apns_token_ok(const char *token);


int
mw_apns_init(mw_ctx_t *ctx)
{
    mw_apns_t  *a;

    a = calloc(1, sizeof(mw_apns_t));
    if (a == NULL) {
        return -1;
    }

    a->ctx = ctx;
    ctx->apns = a;
    a->jobs.next = a->jobs.prev = &a->jobs;
    a->repush_cursor[0] = '0';

    return 0;
}


void
mw_apns_start(mw_ctx_t *ctx)
{
    mw_apns_t  *a = ctx->apns;

    if (a->take_timer.cb == NULL) {
        /*
         * ev_timer_again() arms a timer for its repeat value: with a
         * repeat of 0 it would only stop it, and a take that failed would
         * never be tried again.
         */
        ev_timer_init(&a->take_timer, mw_apns_retake, 0., 0.5);
        a->take_timer.data = a;
    }

    mw_repush_start(a);
    mw_recover_start(a);
}


void
mw_apns_stop(mw_ctx_t *ctx)
{
    mw_job_t   *job, *next;
    mw_apns_t  *a = ctx->apns;

    mw_recover_stop(a);
    mw_repush_stop(a);
    ev_timer_stop(a->ctx->loop, &a->take_timer);

    /* jobs waiting to retry go back to the shared list for later */
    for (job = a->jobs.next; job && job != &a->jobs; job = next) {
        next = job->next;

        if (job->http == NULL && ev_is_active(&job->retry)) {
            ev_timer_stop(a->ctx->loop, &job->retry);
            mw_apns_result(job, "", "", "", "", 1);
        }
    }
}


int
mw_apns_idle(mw_ctx_t *ctx)
{
    mw_apns_t  *a = ctx->apns;

    return a->njobs == 0 && a->pending == 0 && !a->taking;
}


void
mw_apns_cleanup(mw_ctx_t *ctx)
{
    mw_cert_t  *c;
    mw_apns_t  *a = ctx->apns;

    if (a == NULL) {
        return;
    }

    /* jobs first: a job in flight points at its certificate */
    while (a->jobs.next != &a->jobs) {
        mw_apns_free(a->jobs.next);
    }

    while (a->certs) {
        c = a->certs;
        a->certs = c->next;
        free(c->topic);
        free(c->stamp);
        free(c->cert);
        free(c->key);
        free(c);
    }

    free(a);
    ctx->apns = NULL;
}


/* taking jobs: a batch when there are some, else a blocking wait of 1 s */

void
mw_apns_take(mw_apns_t *a)
{
    char         max[16];
    const char  *argv[3];

    if (a->ctx->stopping || a->taking) {
        return;
    }

    if (a->recover_own) {
        mw_recover_own(a);
        return;
    }

    if (a->njobs >= a->ctx->conf.max_inflight) {
        return;
    }

    snprintf(max, sizeof(max), "%d", a->ctx->conf.max_inflight - a->njobs);

    argv[0] = MDM_KEY_PUSH;
    argv[1] = a->proc;
    argv[2] = max;

    if (mw_apns_eval(a, mw_apns_taken, a, MW_LUA_TAKE, 2, 3, argv) != 0) {
        /* Redis is down: look again when it may be back */
        ev_timer_again(a->ctx->loop, &a->take_timer);
        return;
    }

    a->taking = 1;
}


static void
mw_apns_retake(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) revents;

    ev_timer_stop(loop, t);
    mw_apns_take(t->data);
}


static void
mw_apns_taken(redisAsyncContext *ac, void *reply, void *data)
{
    size_t       i;
    mw_job_t    *job;
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->pending--;
    a->taking = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        /* the script may have run: what it moved is nobody's now */
        a->recover_own = 1;
        ev_timer_again(a->ctx->loop, &a->take_timer);
        return;
    }

    for (i = 0; i < r->elements; i++) {
        job = mw_apns_job(a, r->element[i]->str);
        if (job) {
            mw_apns_start_job(job);
        }
    }

    if (r->elements > 0) {
        mw_apns_take(a);
        return;
    }

    if (a->ctx->stopping) {
        return;
    }

    /* nothing queued: wait for one on the blocking connection */
    if (mw_redis_command(&a->ctx->blk, mw_apns_popped, a,
                         "BLMOVE " MDM_KEY_PUSH " %s LEFT RIGHT %d", a->proc,
                         MW_BLOCK_SECONDS) != 0)
    {
        ev_timer_again(a->ctx->loop, &a->take_timer);
        return;
    }

    a->taking = 1;
}


static void
mw_apns_popped(redisAsyncContext *ac, void *reply, void *data)
{
    mw_job_t    *job;
    redisReply  *r = reply;
    mw_apns_t   *a = data;

    (void) ac;

    a->taking = 0;

    if (r && r->type == REDIS_REPLY_STRING) {
        /* off mdm:push: the info script takes it off the pending set */
        job = mw_apns_job(a, r->str);
        if (job) {
            job->pending = 1;
            mw_apns_start_job(job);
        }
    }

    if (r == NULL) {
        a->recover_own = 1;
        ev_timer_again(a->ctx->loop, &a->take_timer);
        return;
    }

    mw_apns_take(a);
}


static mw_job_t *
mw_apns_job(mw_apns_t *a, const char *id)
{
    mw_job_t    *job;
    char         esc[MW_ESC_SIZE];

    job = calloc(1, sizeof(mw_job_t));
    if (job == NULL || (job->id = strdup(id)) == NULL) {
        free(job);
        mw_log("error", "out of memory for push to \"%s\"",
               mw_esc(esc, sizeof(esc), id, strlen(id)));
        return NULL;
    }

    job->apns = a;
    job->next = &a->jobs;
    job->prev = a->jobs.prev;
    a->jobs.prev->next = job;
    a->jobs.prev = job;
    a->njobs++;

    ev_timer_init(&job->retry, mw_apns_retry_timer, 0., 0.);
    job->retry.data = job;

    return job;
}


/* what the push needs, read again at every attempt */

static void
mw_apns_start_job(mw_job_t *job)
{
    const char  *argv[2];

    argv[0] = job->id;
    argv[1] = job->pending ? "1" : "0";

    if (mw_apns_eval(job->apns, mw_apns_info, job, MW_LUA_INFO, 0, 2, argv)
        != 0)
    {
        mw_apns_retry(job, "redis unavailable");
    }
}


static void
mw_apns_info(redisAsyncContext *ac, void *reply, void *data)
{
    char         esc[MW_ESC_SIZE], esc2[MW_ESC_SIZE];
    mw_job_t    *job = data;
    mw_apns_t   *a = job->apns;
    mw_cert_t   *cert;
    redisReply  *r = reply, **e;

    (void) ac;

    a->pending--;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        mw_apns_retry(job, "redis unavailable");
        return;
    }

    e = r->element;
    job->pending = 0;

    if (e[1]->len == 0 || e[2]->len == 0) {
        mw_apns_result(job, "", "no push token: no TokenUpdate yet", "",
                       "no_token", 0);
        return;
    }

    /* set by a 410 for this very token; a TokenUpdate removes it */
    if (e[4]->len) {
        mw_apns_result(job, "", "token unregistered (APNs 410); waiting "
                       "for a TokenUpdate", "", "dead_token", 0);
        return;
    }

    if (!mw_apns_token_ok(e[1]->str)) {
        mw_log("error", "push token of \"%s\" is not hexadecimal: \"%s\"",
               mw_esc(esc, sizeof(esc), job->id, strlen(job->id)),
               mw_esc(esc2, sizeof(esc2), e[1]->str, e[1]->len));
        mw_apns_result(job, "", "the push token is not hexadecimal", "",
                       "bad_token", 0);
        return;
    }

    if (e[5]->len == 0) {
        /* the topic came from the device: never logged raw */
        mw_log("error", "no push certificate for topic \"%s\" (enrollment "
               "\"%s\"): upload it with PUT /v1/pushcert",
               mw_esc(esc, sizeof(esc), e[0]->str, e[0]->len),
               mw_esc(esc2, sizeof(esc2), job->id, strlen(job->id)));
        mw_apns_result(job, "", "no push certificate for the topic", "",
                       "no_certificate", 0);
        return;
    }

    free(job->topic);
    free(job->token);
    free(job->magic);
    job->topic = strdup(e[0]->str);
    job->token = strdup(e[1]->str);
    job->magic = strdup(e[2]->str);

    if (!job->topic || !job->token || !job->magic) {
        mw_apns_retry(job, "out of memory");
        return;
    }

    cert = mw_apns_find_cert(a, job->topic);

    if (cert && cert->stamp && strcmp(cert->stamp, e[5]->str) == 0) {
        mw_apns_send(job, cert);
        return;
    }

    /* a certificate not loaded yet, or replaced since: no restart needed */
    if (mw_redis_command(&a->ctx->cmd, mw_apns_cert, job,
                         "HMGET " MDM_KEY_PUSHCERT "%s cert key updated_at",
                         job->topic) != 0)
    {
        mw_apns_retry(job, "redis unavailable");
        return;
    }

    a->pending++;
}


void
mw_apns_retry(mw_job_t *job, const char *why)
{
    double      delay;
    mw_apns_t  *a = job->apns;

    if (a->ctx->stopping) {
        mw_apns_result(job, "", "", "", "", 1);
        return;
    }

    if (++job->attempts > a->ctx->conf.push_retries) {
        char  err[600];

        snprintf(err, sizeof(err), "gave up after %d attempts: %s",
                 job->attempts, why);
        mw_apns_result(job, "", err, "", "gave_up", 0);
        return;
    }

    delay = a->ctx->conf.push_backoff_ms / 1000. * (1 << (job->attempts - 1));
    if (delay > 60.) {
        delay = 60.;
    }

    mw_stats_add(a->ctx, MW_STAT_PUSH_RETRIES, 1);

    ev_timer_set(&job->retry, delay, 0.);
    ev_timer_start(a->ctx->loop, &job->retry);
}


static void
mw_apns_retry_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;

    mw_apns_start_job(t->data);
}


void
mw_apns_result(mw_job_t *job, const char *apns_id, const char *error,
    const char *dead_token, const char *counter, int requeue)
{
    char         now[32];
    const char  *argv[10];
    mw_apns_t   *a = job->apns;

    snprintf(now, sizeof(now), "%lld", mw_now_ms());

    argv[0] = job->id;
    argv[1] = a->proc;
    argv[2] = now;
    argv[3] = apns_id;
    argv[4] = error;
    argv[5] = dead_token;
    argv[6] = requeue ? "1" : "0";
    argv[7] = counter;
    argv[8] = mw_stats_key(a->ctx);
    argv[9] = mw_stats_ttl(a->ctx);

    if (mw_apns_eval(a, mw_apns_recorded, job, MW_LUA_RESULT, 0, 10, argv)
        != 0)
    {
        /* not recorded: it stays in the processing list for next time */
        mw_apns_free(job);
    }
}


static void
mw_apns_recorded(redisAsyncContext *ac, void *reply, void *data)
{
    mw_job_t   *job = data;
    mw_apns_t  *a = job->apns;

    (void) ac;
    (void) reply;

    a->pending--;
    mw_apns_free(job);
    mw_apns_take(a);
}


static void
mw_apns_free(mw_job_t *job)
{
    mw_apns_t  *a = job->apns;

    if (job->cert && job->cert->warming == job) {
        /* it ends without an answer: the next one warms the connection */
        mw_apns_unpark(job->cert);
    }

    ev_timer_stop(a->ctx->loop, &job->retry);

    if (job->http) {
        /* only at exit: the transfer is abandoned */
        mw_http_free(job->http);
    }

    job->prev->next = job->next;
    job->next->prev = job->prev;
    a->njobs--;

    free(job->id);
    free(job->topic);
    free(job->token);
    free(job->magic);
    free(job);
}


/* a script on the command connection */

int
mw_apns_eval(mw_apns_t *a, redisCallbackFn *cb, void *data, int script,
    int nkeys, int argc, const char **argv)
{
    if (mw_redis_eval(&a->ctx->cmd, script, cb, data, nkeys, argc, argv)
        != 0)
    {
        return -1;
    }

    a->pending++;

    return 0;
}


long long
mw_now_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/* APNs takes any token it issued: hex digits; anything else never goes
 * into the URL */

static int
mw_apns_token_ok(const char *token)
{
    size_t  n = strlen(token);

    return n > 0 && n <= 200 && strspn(token, "0123456789abcdefABCDEF") == n;
}
