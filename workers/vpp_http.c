/*
 * Copyright (C) ngx_mdm contributors
 *
 * One call to Apple's App and Book Management API v2 in a location's
 * lane: the whole sToken as the Bearer token, JSON both ways, and what an
 * answer means.  Apple puts errors in the body, sometimes under an HTTP
 * 200 (Fleet saw it for a bad token), so every body is parsed and an
 * errorNumber is the error whatever the status.  What a failure does to
 * the lane (V4): 9601/9621/9625/9722 or a bare 401 stop the location until
 * a "token" job; 9646, 429 and 5xx back off (Retry-After when given);
 * the rest is recorded and backed off exponentially.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vpp.h"


static int mw_vpp_send(mw_vpp_call_t *c);
static void mw_vpp_http_done(mw_http_t *h);
static size_t mw_vpp_write(char *ptr, size_t size, size_t n, void *data);
static size_t mw_vpp_header(char *ptr, size_t size, size_t n, void *data);
static void mw_vpp_waited(struct ev_loop *loop, ev_timer *t, int revents);


int
mw_vpp_call(mw_vpp_loc_t *l, const char *method, const char *path,
    json_t *body, const char *bearer, mw_vpp_done_pt done, void *data)
{
    mw_vpp_call_t  *c;

    c = calloc(1, sizeof(mw_vpp_call_t));
    if (c == NULL) {
        return -1;
    }

    c->l = l;
    c->method = method;
    c->path = strdup(path);
    c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    c->bearer = strdup(bearer ? bearer : (l->token ? l->token : ""));
    c->done = done;
    c->data = data;

    if (c->path == NULL || c->bearer == NULL || (body && c->body == NULL)
        || mw_vpp_send(c) != 0)
    {
        free(c->path);
        free(c->body);
        free(c->bearer);
        free(c);
        return -1;
    }

    l->busy++;

    return 0;
}


void
mw_vpp_call_free(mw_vpp_call_t *c)
{
    c->l->busy--;

    if (c->http) {
        mw_http_free(c->http);
    }

    json_decref(c->json);
    free(c->path);
    free(c->body);
    free(c->bearer);
    free(c->resp);
    free(c);
}


static int
mw_vpp_send(mw_vpp_call_t *c)
{
    char           url[2048], *hdr;
    size_t         len;
    mw_http_t     *h;
    mw_vpp_loc_t  *l = c->l;
    mw_ctx_t      *ctx = l->vpp->ctx;

    h = mw_http_new(ctx, mw_vpp_http_done, c);
    if (h == NULL) {
        return -1;
    }

    c->retry_after = -1;

    snprintf(url, sizeof(url), "%s%s", l->base_url, c->path);
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, mw_vpp_write);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, mw_vpp_header);
    curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT, 60L);

    if (c->body) {
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE,
                         (long) strlen(c->body));
        h->headers = curl_slist_append(h->headers,
                                       "Content-Type: application/json");
    }

    h->headers = curl_slist_append(h->headers, "Accept: application/json");
    h->headers = curl_slist_append(h->headers, "Expect:");
    h->headers = curl_slist_append(h->headers,
                                   "User-Agent: mdm-worker/" MW_VERSION);

    /* /service/config takes no token */
    if (c->bearer[0] && strcmp(c->path, "/service/config") != 0) {
        len = strlen(c->bearer) + sizeof("Authorization: Bearer ");
        hdr = malloc(len);
        if (hdr == NULL) {
            mw_http_free(h);
            return -1;
        }
        snprintf(hdr, len, "Authorization: Bearer %s", c->bearer);
        h->headers = curl_slist_append(h->headers, hdr);
        free(hdr);
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
mw_vpp_http_done(mw_http_t *h)
{
    long long      exp;
    json_t        *j, *m;
    const char    *msg, *id;
    mw_vpp_call_t *c = h->data;
    mw_vpp_loc_t  *l = c->l;
    char           esc[MW_ESC_SIZE];

    c->status = (h->result == CURLE_OK) ? h->status : 0;

    if (h->result != CURLE_OK) {
        snprintf(c->error, sizeof(c->error), "%s %s: %.200s", c->method,
                 c->path, h->error[0] ? h->error
                                      : curl_easy_strerror(h->result));
    }

    mw_http_free(h);
    c->http = NULL;

    if (c->status) {
        j = c->resp ? json_loadb(c->resp, c->resp_len, 0, NULL) : NULL;
        if (j && !json_is_object(j)) {
            json_decref(j);
            j = NULL;
        }
        c->json = j;

        /* the error is in the body, whatever the status says */
        if (json_is_integer(json_object_get(j, "errorNumber"))) {
            c->errnum = (long) json_integer_value(
                                    json_object_get(j, "errorNumber"));
            msg = json_string_value(json_object_get(j, "errorMessage"));
            snprintf(c->error, sizeof(c->error), "%s %s: HTTP %ld, "
                     "error %ld: %.200s", c->method, c->path, c->status,
                     c->errnum, msg ? msg : "");

        } else if (c->status < 200 || c->status >= 300 || j == NULL) {
            snprintf(c->error, sizeof(c->error), "%s %s: HTTP %ld %s",
                     c->method, c->path, c->status,
                     mw_esc(esc, sizeof(esc), c->resp ? c->resp : "",
                            c->resp_len));
            c->errnum = -1;
        }

        exp = mw_vpp_date(json_string_value(
                              json_object_get(j, "tokenExpirationDate")));
        if (exp && c->bearer && l->token && strcmp(c->bearer, l->token) == 0
            && exp != l->token_expiry)
        {
            l->token_expiry = exp;
            if (mw_redis_command(&l->vpp->ctx->cmd, mw_vpp_acked, l->vpp,
                                 "HSET " MDM_KEY_VPP "%s:status token_expiry "
                                 "%lld", l->name, exp) == 0)
            {
                l->vpp->lease.pending++;
            }
        }

        /* one MDM per location: someone else's mdmInfo means we lost it */
        m = json_object_get(j, "mdmInfo");
        id = json_string_value(json_object_get(m, "id"));
        if (c->errnum == 0 && id && l->vpp->mdm_id[0] && l->token
            && strcmp(c->bearer, l->token) == 0
            && strcmp(id, l->vpp->mdm_id) != 0)
        {
            snprintf(c->error, sizeof(c->error), "%s %s: the location is "
                     "managed by another MDM (mdmInfo id %.64s): PUT the "
                     "token again with force", c->method, c->path, id);
            c->errnum = -2;
        }
    }

    if (c->status >= 200 && c->status < 300 && c->errnum == 0) {
        l->backoff = 0;
    }

    c->done(c);
}


/*
 * A failed call: what it does to the lane (V4), recorded in the status
 * hash and as a vpp.error event.  Returns MW_VPP_STOP, MW_VPP_BACKOFF (a
 * wait is set: the call is to be made again) or MW_VPP_ERROR (a wait is
 * set too: Apple refused it, the caller decides).
 */

int
mw_vpp_failed(mw_vpp_call_t *c, const char *what)
{
    int            kind;
    double         delay, max;
    mw_vpp_loc_t  *l = c->l;
    mw_conf_t     *conf = &l->vpp->ctx->conf;

    (void) what;

    if (c->errnum == 9601 || c->errnum == 9621 || c->errnum == 9625
        || c->errnum == 9722 || c->errnum == -2
        || (c->status == 401 && c->errnum <= 0))
    {
        mw_vpp_error(l, c->error, c->errnum > 0 ? c->errnum : 0, 1);
        return MW_VPP_STOP;
    }

    kind = (c->status == 0 || c->status == 429 || c->status >= 500
            || c->errnum == 9646) ? MW_VPP_BACKOFF : MW_VPP_ERROR;

    max = (double) conf->vpp_backoff_max;

    if (kind == MW_VPP_BACKOFF && c->retry_after >= 0) {
        delay = (double) c->retry_after;
        if (delay > 3600.) {
            delay = 3600.;
        }

    } else {
        l->backoff = l->backoff ? l->backoff * 2
                                : (double) conf->vpp_backoff_ms / 1000.;
        if (l->backoff > max) {
            l->backoff = max;
        }
        delay = l->backoff;
    }

    mw_log("error", "vpp %s: %s; %s in %.1f s", l->name, c->error,
           kind == MW_VPP_BACKOFF ? "retried" : "going on", delay);
    mw_vpp_error(l, c->error, c->errnum > 0 ? c->errnum : 0, 0);
    mw_vpp_wait(l, delay);

    return kind;
}


void
mw_vpp_error(mw_vpp_loc_t *l, const char *error, long errnum, int stop)
{
    char        now[32], num[32], max[32];
    const char *argv[6];
    mw_ctx_t   *ctx = l->vpp->ctx;

    if (stop) {
        l->stopped = 1;
        l->written = l->vpp->ticks;
        l->phase = MW_VPP_IDLE;
        mw_log("error", "vpp %s: stopped: %s; PUT a new token to go on",
               l->name, error);
        mw_vpp_sync_reply(l, 502, error);
    }

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(max, sizeof(max), "%ld", ctx->conf.vpp_events_max);
    if (errnum) {
        snprintf(num, sizeof(num), "%ld", errnum);
    } else {
        num[0] = '\0';
    }

    argv[0] = l->name;
    argv[1] = now;
    argv[2] = error;
    argv[3] = num;
    argv[4] = stop ? "1" : "0";
    argv[5] = max;

    if (mw_redis_eval(&ctx->cmd, MW_LUA_VPP_ERROR, mw_vpp_acked, l->vpp, 0,
                      6, argv) == 0)
    {
        l->vpp->lease.pending++;
    }
}


void
mw_vpp_wait(mw_vpp_loc_t *l, double seconds)
{
    ev_timer_stop(l->vpp->ctx->loop, &l->wait);
    ev_timer_init(&l->wait, mw_vpp_waited, seconds, 0.);
    l->wait.data = l;
    ev_timer_start(l->vpp->ctx->loop, &l->wait);
}


static void
mw_vpp_waited(struct ev_loop *loop, ev_timer *t, int revents)
{
    mw_vpp_loc_t  *l = t->data;

    (void) loop;
    (void) revents;

    mw_vpp_step(l);
}


static size_t
mw_vpp_write(char *ptr, size_t size, size_t n, void *data)
{
    mw_vpp_call_t  *c = data;

    return mw_lane_body(&c->resp, &c->resp_len, &c->resp_size, MW_VPP_BODY_MAX,
                        ptr, size * n);
}


/* Retry-After: seconds or an HTTP date */

static size_t
mw_vpp_header(char *ptr, size_t size, size_t n, void *data)
{
    char            v[256];
    long            s;
    size_t          len = size * n, i;
    mw_vpp_call_t  *c = data;

    if (len < 12 || strncasecmp(ptr, "Retry-After:", 12) != 0) {
        return len;
    }

    for (i = 12; i < len && (ptr[i] == ' ' || ptr[i] == '\t'); i++) { }
    snprintf(v, sizeof(v), "%.*s", (int) (len - i), ptr + i);
    v[strcspn(v, "\r\n")] = '\0';

    s = mw_lane_retry_after(v);
    if (s >= 0) {
        c->retry_after = s;
    }

    return len;
}
