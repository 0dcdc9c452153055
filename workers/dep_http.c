/*
 * Copyright (C) ngx_mdm contributors
 *
 * One call to Apple's DEP API in a name's lane: the headers every call
 * carries (X-ADM-Auth-Session, X-Server-Protocol-Version, User-Agent,
 * JSON content types), the newest session a response brings, one
 * re-authentication and replay on 401 or 403 FORBIDDEN, and what a
 * failure does to the lane: Retry-After, exponential backoff, or a stop
 * (T_C_NOT_SIGNED, ACCESS_DENIED) until the admin acts.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "dep.h"


static int mw_dep_send(mw_dep_call_t *c, const char *auth);
static void mw_dep_http_done(mw_http_t *h);
static void mw_dep_authed(mw_dep_call_t *c);
static size_t mw_dep_write(char *ptr, size_t size, size_t n, void *data);
static size_t mw_dep_header(char *ptr, size_t size, size_t n, void *data);
static void mw_dep_save_session(mw_dep_name_t *n);
static void mw_dep_written(redisAsyncContext *ac, void *reply, void *data);
static void mw_dep_waited(struct ev_loop *loop, ev_timer *t, int revents);
static int mw_dep_token_ok(const char *v);


int
mw_dep_call(mw_dep_name_t *n, const char *method, const char *path,
    const char *body, mw_dep_done_pt done, void *data)
{
    mw_dep_call_t  *c;

    c = calloc(1, sizeof(mw_dep_call_t));
    if (c == NULL) {
        return -1;
    }

    c->n = n;
    c->method = method;
    c->path = strdup(path);
    c->body = body ? strdup(body) : NULL;
    c->done = done;
    c->data = data;

    if (c->path == NULL || (body && c->body == NULL)
        || mw_dep_send(c, NULL) != 0)
    {
        free(c->path);
        free(c->body);
        free(c);
        return -1;
    }

    n->busy++;

    return 0;
}


void
mw_dep_call_free(mw_dep_call_t *c)
{
    c->n->busy--;

    if (c->http) {
        mw_http_free(c->http);
    }

    free(c->path);
    free(c->body);
    free(c->resp);
    free(c);
}


static int
mw_dep_send(mw_dep_call_t *c, const char *auth)
{
    char            url[2048], hdr[1200];
    mw_http_t      *h;
    mw_dep_name_t  *n = c->n;
    mw_ctx_t       *ctx = n->dep->ctx;

    h = mw_http_new(ctx, mw_dep_http_done, c);
    if (h == NULL) {
        return -1;
    }

    c->resp_len = 0;
    c->ctype[0] = '\0';
    c->retry_after = -1;

    snprintf(url, sizeof(url), "%s%s", n->base_url, c->path);
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, mw_dep_write);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, mw_dep_header);
    curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT, 120L);

    if (c->body) {
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(c->body));
    }

    /* NanoDEP's exact spelling: Apple's simulator insists on it */
    h->headers = curl_slist_append(h->headers,
                                   "Content-Type: application/json;charset=UTF8");
    h->headers = curl_slist_append(h->headers,
                                   "Accept: application/json;charset=UTF8");
    h->headers = curl_slist_append(h->headers, "Expect:");
    snprintf(hdr, sizeof(hdr), "User-Agent: mdm-worker/%s", MW_VERSION);
    h->headers = curl_slist_append(h->headers, hdr);
    snprintf(hdr, sizeof(hdr), "X-Server-Protocol-Version: %d",
             ctx->conf.dep_protocol_version);
    h->headers = curl_slist_append(h->headers, hdr);

    if (auth) {
        h->headers = curl_slist_append(h->headers, auth);

    } else if (n->session) {
        snprintf(hdr, sizeof(hdr), "X-ADM-Auth-Session: %s", n->session);
        h->headers = curl_slist_append(h->headers, hdr);
    }

    c->http = h;

    if (mw_http_start(h) != 0) {
        mw_http_free(h);
        c->http = NULL;
        return -1;
    }

    return 0;
}


static void
mw_dep_http_done(mw_http_t *h)
{
    mw_dep_call_t  *c = h->data;
    mw_dep_name_t  *n = c->n;

    c->status = (h->result == CURLE_OK) ? h->status : 0;
    if (h->result != CURLE_OK) {
        snprintf(c->ctype, sizeof(c->ctype), "%.200s",
                 h->error[0] ? h->error : curl_easy_strerror(h->result));
        c->resp_len = 0;
    }

    mw_http_free(h);
    c->http = NULL;

    if (c->resp == NULL) {
        c->resp = strdup("");
    }

    if (c->done == mw_dep_authed) {
        mw_dep_authed(c);
        return;
    }

    /* an unknown or expired session: a new one, and the call once more */
    if (!c->replayed && (c->status == 401
        || (c->status == 403 && c->resp && strstr(c->resp, "FORBIDDEN"))))
    {
        c->replayed = 1;
        free(n->session);
        n->session = NULL;
        mw_dep_auth(n, c);
        return;
    }

    if (c->status >= 200 && c->status < 300) {
        n->backoff = 0;
    }

    c->done(c);
}


/* GET /session; "replay" goes again once a session is there */

void
mw_dep_auth(mw_dep_name_t *n, mw_dep_call_t *replay)
{
    char           url[2048], *hdr;
    mw_dep_call_t  *c;

    c = calloc(1, sizeof(mw_dep_call_t));
    if (c == NULL) {
        return;
    }

    c->n = n;
    c->method = "GET";
    c->path = strdup("/session");
    c->done = mw_dep_authed;
    c->data = replay;

    snprintf(url, sizeof(url), "%s/session", n->base_url);
    hdr = mw_dep_oauth_header(url, n->ck, n->cs, n->at, n->as);

    if (c->path == NULL || hdr == NULL || mw_dep_send(c, hdr) != 0) {
        free(hdr);
        free(c->path);
        free(c);
        mw_dep_wait(n, 1.);
        if (replay) {
            replay->status = 0;
            replay->replayed = 2;
            replay->done(replay);
        }
        return;
    }

    free(hdr);
    n->busy++;
}


static void
mw_dep_authed(mw_dep_call_t *c)
{
    json_t         *j;
    const char     *tok;
    mw_dep_name_t  *n = c->n;
    mw_dep_call_t  *replay = c->data;

    j = (c->status == 200) ? json_loads(c->resp, 0, NULL) : NULL;
    tok = json_string_value(json_object_get(j, "auth_session_token"));

    if (tok && tok[0] && strlen(tok) < 1024 && mw_dep_token_ok(tok)) {
        mw_lane_set(&n->session, tok, strlen(tok));
        mw_dep_save_session(n);
        json_decref(j);
        mw_dep_call_free(c);

        if (replay && mw_dep_send(replay, NULL) != 0) {
            replay->status = 0;
            replay->replayed = 2;
            replay->done(replay);

        } else if (replay == NULL) {
            mw_dep_step(n);
        }
        return;
    }

    json_decref(j);
    mw_dep_failed(c, "GET /session");
    mw_dep_call_free(c);

    if (replay) {
        /* replayed == 2: its failure is the session's, recorded already */
        replay->status = 0;
        replay->replayed = 2;
        replay->done(replay);
        return;
    }

    mw_dep_step(n);
}


/*
 * A failed call: a stop for what only the admin can mend, Retry-After on
 * 429 and 503, exponential backoff for the rest.  Recorded in the status
 * hash and as a dep.error event.
 */

void
mw_dep_failed(mw_dep_call_t *c, const char *what)
{
    char            err[512], esc[MW_ESC_SIZE];
    double          delay, max;
    mw_dep_name_t  *n = c->n;
    mw_conf_t      *conf = &n->dep->ctx->conf;

    if (c->status == 0) {
        snprintf(err, sizeof(err), "%s: %s", what, c->ctype);
    } else {
        snprintf(err, sizeof(err), "%s: HTTP %ld %s", what, c->status,
                 mw_esc(esc, sizeof(esc), c->resp, c->resp_len));
    }

    if (c->status == 403 && (strstr(c->resp, "T_C_NOT_SIGNED")
                             || strstr(c->resp, "ACCESS_DENIED")))
    {
        mw_dep_error(n, err, 1);
        return;
    }

    max = (double) conf->dep_backoff_max;

    if ((c->status == 429 || c->status == 503) && c->retry_after >= 0) {
        delay = (double) c->retry_after;
        if (delay > 3600.) {
            delay = 3600.;
        }

    } else {
        n->backoff = n->backoff ? n->backoff * 2
                                : (double) conf->dep_backoff_ms / 1000.;
        if (n->backoff > max) {
            n->backoff = max;
        }
        delay = n->backoff;
    }

    mw_log("error", "dep %s: %s; retried in %.1f s", n->name, err, delay);
    mw_dep_error(n, err, 0);
    mw_dep_wait(n, delay);
}


void
mw_dep_error(mw_dep_name_t *n, const char *error, int stop)
{
    char        now[32], max[32];
    const char *argv[5];
    mw_ctx_t   *ctx = n->dep->ctx;

    if (stop) {
        n->stopped = 1;
        n->stopped_at = mw_now_ms();
        n->phase = MW_DEP_IDLE;
        mw_log("error", "dep %s: stopped: %s; PUT a new token to go on",
               n->name, error);
    }

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(max, sizeof(max), "%ld", ctx->conf.dep_events_max);
    argv[0] = n->name;
    argv[1] = now;
    argv[2] = error;
    argv[3] = stop ? "1" : "0";
    argv[4] = max;

    if (mw_redis_eval(&ctx->cmd, MW_LUA_DEP_ERROR, mw_dep_written, n->dep, 0,
                      5, argv) == 0)
    {
        n->dep->lease.pending++;
    }
}


void
mw_dep_wait(mw_dep_name_t *n, double seconds)
{
    ev_timer_stop(n->dep->ctx->loop, &n->wait);
    ev_timer_init(&n->wait, mw_dep_waited, seconds, 0.);
    n->wait.data = n;
    ev_timer_start(n->dep->ctx->loop, &n->wait);
}


static void
mw_dep_waited(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_dep_name_t  *n = t->data;

    (void) loop;
    (void) revents;

    mw_dep_step(n);
}


static void
mw_dep_save_session(mw_dep_name_t *n)
{
    mw_ctx_t  *ctx = n->dep->ctx;

    if (mw_redis_command(&ctx->cmd, mw_dep_written, n->dep,
                         "SET " MDM_KEY_DEP "%s:session %s EX %ld", n->name,
                         n->session, ctx->conf.dep_session_ttl) == 0)
    {
        n->dep->lease.pending++;
    }
}


static void
mw_dep_written(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *r = reply;
    mw_dep_t    *dep = data;

    (void) ac;

    dep->lease.pending--;

    if (r && r->type == REDIS_REPLY_ERROR) {
        mw_log("error", "dep: redis: %s", r->str);
    }
}


static size_t
mw_dep_write(char *ptr, size_t size, size_t n, void *data)
{
    mw_dep_call_t  *c = data;

    return mw_lane_body(&c->resp, &c->resp_len, &c->resp_size, MW_DEP_BODY_MAX,
                        ptr, size * n);
}


/* a session token goes back in a header: visible ASCII only */

static int
mw_dep_token_ok(const char *v)
{
    for ( /* void */ ; *v; v++) {
        if (*v < 0x21 || *v > 0x7e) {
            return 0;
        }
    }

    return 1;
}


/* the newest X-ADM-Auth-Session always wins; Retry-After; Content-Type */

static size_t
mw_dep_header(char *ptr, size_t size, size_t n, void *data)
{
    char            v[1024];
    long            s;
    size_t          len = size * n, i, k;
    mw_dep_call_t  *c = data;
    mw_dep_name_t  *dn = c->n;

    for (k = 0; k < len && ptr[k] != ':'; k++) { /* void */ }
    if (k == len) {
        return len;
    }

    for (i = k + 1; i < len && (ptr[i] == ' ' || ptr[i] == '\t'); i++) { }
    snprintf(v, sizeof(v), "%.*s", (int) (len - i), ptr + i);
    v[strcspn(v, "\r\n")] = '\0';

    if (k == 18 && strncasecmp(ptr, "X-ADM-Auth-Session", 18) == 0
        && v[0] && mw_dep_token_ok(v))
    {
        if (dn->session == NULL || strcmp(dn->session, v) != 0) {
            mw_lane_set(&dn->session, v, strlen(v));
            mw_dep_save_session(dn);
        }

    } else if (k == 11 && strncasecmp(ptr, "Retry-After", 11) == 0) {
        s = mw_lane_retry_after(v);
        if (s >= 0) {
            c->retry_after = s;
        }

    } else if (k == 12 && strncasecmp(ptr, "Content-Type", 12) == 0) {
        snprintf(c->ctype, sizeof(c->ctype), "%.200s", v);
    }

    return len;
}
