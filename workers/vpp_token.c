/*
 * Copyright (C) ngx_mdm contributors
 *
 * The "token" job (V2): the sToken the admin downloaded is checked with
 * GET /client/config (an error in the body, a 200 too, is the error),
 * refused when another MDM's mdmInfo holds the location unless "force",
 * then POST /client/config makes us the location's MDM (and subscribes to
 * notifications when the location's config has notify_url).  Only then is
 * the token stored, the stop cleared and a full sync started.  Replies:
 * 200 {org, location, token_expiry}, 409 bound to another MDM, 422 Apple's
 * token errors, 502 Apple out of reach.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "vpp.h"


static int mw_vpp_token_decode(mw_vpp_job_t *job, char **org, long long *exp);
static void mw_vpp_token_prepped(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_vpp_token_got(mw_vpp_call_t *c);
static void mw_vpp_token_posted(mw_vpp_call_t *c);
static void mw_vpp_token_stored(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_vpp_token_fail(mw_vpp_loc_t *l, mw_vpp_job_t *job, int status,
    const char *error, long errnum);


static const char *
mw_vpp_job_token(mw_vpp_job_t *job)
{
    return json_string_value(json_object_get(job->j, "token"));
}


void
mw_vpp_token_run(mw_vpp_loc_t *l, mw_vpp_job_t *job)
{
    char        rnd[65], *org = NULL;
    long long   exp;
    const char *argv[3];

    if (job->step != 0) {
        return;          /* a step's reply is awaited */
    }

    if (mw_vpp_token_decode(job, &org, &exp) != 0) {
        free(org);
        mw_vpp_token_fail(l, job, 422, "the token is not a content token "
                          "file (base64 of {token, expDate, orgName})", 0);
        return;
    }
    free(org);

    job->step = 1;
    mw_vpp_random_hex(rnd, 32);
    argv[0] = "prep";
    argv[1] = l->name;
    argv[2] = rnd;

    if (mw_vpp_eval(l, MW_LUA_VPP_TOKEN, mw_vpp_token_prepped, job, 3, argv)
        != 0)
    {
        job->step = 0;
    }
}


static void
mw_vpp_token_prepped(redisAsyncContext *ac, void *reply, void *data)
{
    size_t         len;
    redisReply    *r = reply;
    mw_vpp_job_t  *job = data;
    mw_vpp_loc_t  *l = job->l;

    (void) ac;

    if (!mw_vpp_done_redis(l, reply) || r->type != REDIS_REPLY_ARRAY
        || r->elements != 3)
    {
        job->step = 0;
        mw_vpp_wait(l, 1.);
        return;
    }

    len = r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->len : 0;
    while (len && r->element[2]->str[len - 1] == '/') {
        len--;
    }
    mw_lane_set(&l->base_url, len ? r->element[2]->str
                                 : "https://vpp.itunes.apple.com/mdm/v2",
               len ? len : 35);

    if (r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len) {
        job->notify_url = strdup(r->element[0]->str);
        job->notify_token = r->element[1]->type == REDIS_REPLY_STRING
                            ? strdup(r->element[1]->str) : NULL;
    }

    job->step = 2;

    if (mw_vpp_call(l, "GET", "/client/config", NULL, mw_vpp_job_token(job),
                    mw_vpp_token_got, job) != 0)
    {
        mw_vpp_token_fail(l, job, 502, "cannot start a call to Apple", 0);
    }
}


/* Apple's answer to a token job's call: 0 if it may go on */

static int
mw_vpp_token_answer(mw_vpp_call_t *c, mw_vpp_job_t *job)
{
    if (c->errnum == -2) {
        c->errnum = 0;       /* the location's own check: ours below */
    }

    if (c->status >= 200 && c->status < 300 && c->errnum == 0) {
        return 0;
    }

    if (c->errnum > 0 && c->errnum != 9646) {
        mw_vpp_token_fail(c->l, job, 422, c->error, c->errnum);

    } else {
        mw_vpp_token_fail(c->l, job, 502, c->error, c->errnum > 0
                                                    ? c->errnum : 0);
    }

    return -1;
}


static void
mw_vpp_token_got(mw_vpp_call_t *c)
{
    json_t        *m, *body, *notify;
    const char    *id;
    mw_vpp_job_t  *job = c->data;
    mw_vpp_loc_t  *l = c->l;
    mw_vpp_t      *vpp = l->vpp;

    if (mw_vpp_token_answer(c, job) != 0) {
        mw_vpp_call_free(c);
        mw_vpp_step(l);
        return;
    }

    m = json_object_get(c->json, "mdmInfo");
    id = json_string_value(json_object_get(m, "id"));

    if (id && id[0] && strcmp(id, vpp->mdm_id) != 0
        && !json_is_true(json_object_get(job->j, "force")))
    {
        body = json_pack("{s:s,s:O}", "error", "bound to another MDM",
                         "mdm", m);
        mw_log("warn", "vpp %s: token refused: the location is bound to "
               "another MDM (mdmInfo id %.64s); force takes it", l->name, id);
        mw_vpp_reply(vpp, job->id, 409, body);
        json_decref(body);
        mw_vpp_job_end(l, job);
        mw_vpp_call_free(c);
        mw_vpp_step(l);
        return;
    }

    job->client = json_incref(c->json);
    mw_vpp_call_free(c);

    body = json_pack("{s:{s:s,s:s}}", "mdmInfo", "id", vpp->mdm_id,
                     "name", "ngx_mdm");
    if (job->notify_url && job->notify_token) {
        notify = json_pack("[ss]", "ASSET_MANAGEMENT", "ASSET_COUNT");
        json_object_set_new(body, "notificationUrl",
                            json_string(job->notify_url));
        json_object_set_new(body, "notificationAuthToken",
                            json_string(job->notify_token));
        json_object_set_new(body, "notificationTypes", notify);
    }

    job->step = 3;

    if (body == NULL
        || mw_vpp_call(l, "POST", "/client/config", body,
                       mw_vpp_job_token(job), mw_vpp_token_posted, job) != 0)
    {
        mw_vpp_token_fail(l, job, 502, "cannot start a call to Apple", 0);
    }

    json_decref(body);
}


static void
mw_vpp_token_posted(mw_vpp_call_t *c)
{
    char          *org = NULL, *s, exps[32], now[32];
    json_t        *body, *reply;
    long long      exp, apple;
    const char    *loc, *argv[9];
    mw_vpp_job_t  *job = c->data;
    mw_vpp_loc_t  *l = c->l;

    if (mw_vpp_token_answer(c, job) != 0) {
        mw_vpp_call_free(c);
        mw_vpp_step(l);
        return;
    }

    mw_vpp_token_decode(job, &org, &exp);

    /* tokenExpirationDate, when Apple gives it, is Apple's word */
    apple = mw_vpp_date(json_string_value(
                json_object_get(c->json, "tokenExpirationDate")));
    if (apple) {
        exp = apple;
    }

    loc = json_string_value(json_object_get(c->json, "locationName"));
    if (loc == NULL) {
        loc = json_string_value(json_object_get(job->client, "locationName"));
    }

    body = json_pack("{s:s,s:s,s:I}", "org", org ? org : "",
                     "location", loc ? loc : "", "token_expiry", exp);
    reply = json_pack("{s:i,s:o}", "status", 200, "body", body);
    s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);

    snprintf(exps, sizeof(exps), "%lld", exp);
    snprintf(now, sizeof(now), "%lld", mw_now_ms());

    argv[0] = "store";
    argv[1] = l->name;
    argv[2] = mw_vpp_job_token(job);
    argv[3] = org ? org : "";
    argv[4] = loc ? loc : "";
    argv[5] = exps;
    argv[6] = now;
    argv[7] = job->id;
    argv[8] = s ? s : "{}";

    mw_log("notice", "vpp %s: token of %s (%s) validated, expires %lld",
           l->name, org ? org : "", loc ? loc : "", exp);

    /* the lane takes it at once: a tick may come before the store */
    mw_lane_set(&l->token, argv[2], strlen(argv[2]));
    l->token_expiry = exp;
    l->stopped = 0;
    l->written = l->vpp->ticks;
    l->warned_at = 0;
    l->full = 1;
    l->sync_now = 1;
    l->svc_at = 0;
    l->backoff = 0;
    l->phase = MW_VPP_IDLE;
    free(l->version_id);
    l->version_id = NULL;

    job->step = 4;
    if (mw_vpp_eval(l, MW_LUA_VPP_TOKEN, mw_vpp_token_stored, job, 9, argv)
        != 0)
    {
        mw_vpp_token_fail(l, job, 502, "redis", 0);
    }

    /* argv points into the answer: freed only now */
    mw_vpp_call_free(c);
    free(s);
    free(org);
}


static void
mw_vpp_token_stored(redisAsyncContext *ac, void *reply, void *data)
{
    mw_vpp_job_t  *job = data;
    mw_vpp_loc_t  *l = job->l;

    (void) ac;

    if (!mw_vpp_done_redis(l, reply)) {
        /* the reply was not written: the module answers 504 */
        mw_log("error", "vpp %s: the token could not be stored", l->name);
    }

    /* the script took it out of mdm:vpp:running with the reply */
    mw_vpp_job_end(l, job);
    mw_vpp_step(l);
}


static void
mw_vpp_token_fail(mw_vpp_loc_t *l, mw_vpp_job_t *job, int status,
    const char *error, long errnum)
{
    json_t  *body;

    mw_log("warn", "vpp %s: token refused (%d): %s", l->name, status, error);

    body = errnum ? json_pack("{s:s,s:i}", "error", error, "error_number",
                              (int) errnum)
                  : json_pack("{s:s}", "error", error);
    mw_vpp_reply(l->vpp, job->id, status, body);
    json_decref(body);
    mw_vpp_job_end(l, job);
}


/* the sToken: base64 of {"token", "expDate", "orgName"} */

static int
mw_vpp_token_decode(mw_vpp_job_t *job, char **org, long long *exp)
{
    int            n;
    size_t         len;
    json_t        *j;
    const char    *tok, *o;
    unsigned char *raw;

    *org = NULL;
    *exp = 0;

    tok = mw_vpp_job_token(job);
    if (tok == NULL || (len = strlen(tok)) == 0 || len > 16384
        || len % 4 != 0)
    {
        return -1;
    }

    raw = malloc(len);
    if (raw == NULL) {
        return -1;
    }

    n = EVP_DecodeBlock(raw, (const unsigned char *) tok, (int) len);
    if (n <= 0) {
        free(raw);
        return -1;
    }

    /* EVP_DecodeBlock counts the padding as zero bytes */
    while (n > 0 && raw[n - 1] == '\0') {
        n--;
    }

    j = json_loadb((const char *) raw, (size_t) n, 0, NULL);
    free(raw);

    if (!json_is_string(json_object_get(j, "token"))) {
        json_decref(j);
        return -1;
    }

    o = json_string_value(json_object_get(j, "orgName"));
    *org = strdup(o ? o : "");
    *exp = mw_vpp_date(json_string_value(json_object_get(j, "expDate")));
    json_decref(j);

    return 0;
}
