/*
 * Copyright (C) ngx_mdm contributors
 *
 * APNs pushes, the HTTP/2 side: push certificates read from Redis and
 * cached by topic, the request to APNs, and what its answer means.  Taking
 * jobs and recording results stay in apns.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "apns.h"


static void mw_apns_done(mw_http_t *h);
static char *mw_apns_payload(const char *magic);
static void mw_apns_reason(mw_http_t *h, char *reason, size_t size);
static char *mw_dup(const char *s, size_t n);


void
mw_apns_cert(redisAsyncContext *ac, void *reply, void *data)
{
    char         esc[MW_ESC_SIZE];
    mw_job_t    *job = data;
    mw_apns_t   *a = job->apns;
    mw_cert_t   *cert;
    redisReply  *r = reply, **e;

    (void) ac;

    a->pending--;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        mw_apns_retry(job, "push certificate unreadable");
        return;
    }

    e = r->element;

    cert = mw_apns_find_cert(a, job->topic);

    if (cert && cert->stamp && e[2]->type == REDIS_REPLY_STRING
        && strlen(cert->stamp) == e[2]->len
        && memcmp(cert->stamp, e[2]->str, e[2]->len) == 0)
    {
        /*
         * Loaded meanwhile for another push that asked first (a start with
         * many pushes to make): loading it again would forget its warm
         * connection, once per push.
         */
        mw_apns_send(job, cert);
        return;
    }

    if (cert == NULL) {
        cert = calloc(1, sizeof(mw_cert_t));
        if (cert == NULL || (cert->topic = strdup(job->topic)) == NULL) {
            free(cert);
            mw_apns_retry(job, "out of memory");
            return;
        }

        cert->next = a->certs;
        a->certs = cert;
    }

    free(cert->cert);
    free(cert->key);
    free(cert->stamp);
    cert->warm = 0;
    cert->cert = mw_dup(e[0]->str, e[0]->len);
    cert->cert_len = e[0]->len;
    cert->key = mw_dup(e[1]->str, e[1]->len);
    cert->key_len = e[1]->len;
    cert->stamp = e[2]->type == REDIS_REPLY_STRING
                  ? mw_dup(e[2]->str, e[2]->len) : NULL;

    if (!cert->cert || !cert->key) {
        mw_apns_retry(job, "out of memory");
        return;
    }

    mw_log("notice", "push certificate for topic \"%s\" loaded",
           mw_esc(esc, sizeof(esc), job->topic, strlen(job->topic)));

    mw_apns_send(job, cert);
}


void
mw_apns_send(mw_job_t *job, mw_cert_t *cert)
{
    char                url[1024], hdr[512], *body;
    mw_http_t          *h;
    mw_apns_t          *a = job->apns;
    struct curl_blob    blob;

    body = mw_apns_payload(job->magic);
    if (body == NULL) {
        mw_apns_result(job, "", "the push magic is not valid UTF-8", "",
                       "bad_magic", 0);
        return;
    }

    job->cert = cert;

    if (!cert->warm) {
        if (cert->warming && cert->warming != job) {
            job->parked_next = cert->parked;
            cert->parked = job;
            free(body);
            return;
        }

        cert->warming = job;
    }

    h = mw_http_new(a->ctx, mw_apns_done, job);
    if (h == NULL) {
        free(body);
        mw_apns_retry(job, "out of memory");
        return;
    }

    snprintf(url, sizeof(url), "%s/3/device/%s", a->ctx->conf.apns_url,
             job->token);

    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_COPYPOSTFIELDS, body);
    free(body);
    curl_easy_setopt(h->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h->easy, CURLOPT_PIPEWAIT, 1L);

    blob.data = cert->cert;
    blob.len = cert->cert_len;
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h->easy, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(h->easy, CURLOPT_SSLCERTTYPE, "PEM");

    blob.data = cert->key;
    blob.len = cert->key_len;
    curl_easy_setopt(h->easy, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(h->easy, CURLOPT_SSLKEYTYPE, "PEM");

    if (a->ctx->conf.apns_ca && a->ctx->conf.apns_ca[0]) {
        curl_easy_setopt(h->easy, CURLOPT_CAINFO, a->ctx->conf.apns_ca);
    }

    h->headers = curl_slist_append(h->headers,
                                   "Content-Type: application/json");
    h->headers = curl_slist_append(h->headers, "apns-push-type: mdm");

    snprintf(hdr, sizeof(hdr), "apns-topic: %s", job->topic);
    h->headers = curl_slist_append(h->headers, hdr);

    snprintf(hdr, sizeof(hdr), "apns-priority: %d",
             a->ctx->conf.apns_priority);
    h->headers = curl_slist_append(h->headers, hdr);

    snprintf(hdr, sizeof(hdr), "apns-expiration: %lld",
             a->ctx->conf.apns_expiration
             ? mw_now_ms() / 1000 + a->ctx->conf.apns_expiration : 0LL);
    h->headers = curl_slist_append(h->headers, hdr);

    job->http = h;

    if (h->headers == NULL || mw_http_start(h) != 0) {
        job->http = NULL;
        mw_http_free(h);
        mw_apns_retry(job, "cannot start the request");
    }
}


/* what APNs said, and what follows from it */

static void
mw_apns_done(mw_http_t *h)
{
    char        why[512], reason[128], esc[MW_ESC_SIZE];
    mw_job_t   *job = h->data;
    mw_apns_t  *a = job->apns;
    mw_cert_t  *cert = job->cert;

    job->http = NULL;

    if (cert && cert->warming == job) {
        /* the connection is known now: release the pushes that waited */
        cert->warm = (h->result == CURLE_OK);
        mw_apns_unpark(cert);

    } else if (cert && h->result != CURLE_OK) {
        /* the connection may be gone: the next push warms a new one */
        cert->warm = 0;
    }

    mw_apns_reason(h, reason, sizeof(reason));

    if (h->result != CURLE_OK) {
        /*
         * Under TLS 1.3 the server refuses a client certificate after the
         * handshake, so curl sees the alert on its first read or write.
         */
        if (h->result == CURLE_SSL_CONNECT_ERROR
            || h->result == CURLE_SSL_CERTPROBLEM
            || h->result == CURLE_PEER_FAILED_VERIFICATION
            || h->result == CURLE_SSL_CACERT_BADFILE
            || ((h->result == CURLE_RECV_ERROR
                 || h->result == CURLE_SEND_ERROR)
                && strstr(h->error, "alert") != NULL))
        {
            mw_log("error", "TLS to APNs failed for topic \"%s\": %s (is the "
                   "push certificate expired or revoked?)",
                   mw_esc(esc, sizeof(esc), job->topic, strlen(job->topic)),
                   h->error[0] ? h->error : curl_easy_strerror(h->result));
            mw_redis_command(&a->ctx->cmd, NULL, NULL,
                             "HINCRBY " MDM_KEY_STATS_APNS " tls_failure 1");
            mw_stats_add(a->ctx, MW_STAT_TLS_FAILURES, 1);
        }

        snprintf(why, sizeof(why), "%s",
                 h->error[0] ? h->error : curl_easy_strerror(h->result));
        mw_http_free(h);
        mw_apns_retry(job, why);
        return;
    }

    if (h->status == 200) {
        a->bad_requests = 0;
        mw_apns_result(job, h->apns_id, "", "", "ok", 0);
        mw_http_free(h);
        return;
    }

    snprintf(why, sizeof(why), "APNs %ld %s", h->status,
             reason[0] ? reason : "");

    if (h->status == 410) {
        /*
         * Dead is this token, not whatever the enrollment holds by now: a
         * TokenUpdate may have replaced it while the push was out.
         */
        mw_apns_result(job, "", why, job->token, "unregistered", 0);

    } else if (h->status == 429 || h->status >= 500) {
        mw_http_free(h);
        mw_apns_retry(job, why);
        return;

    } else if (h->status == 403) {
        mw_log("error", "APNs refused the push certificate for topic \"%s\": "
               "%s", mw_esc(esc, sizeof(esc), job->topic, strlen(job->topic)),
               why);
        mw_apns_result(job, "", why, "", "bad_certificate", 0);

    } else if (h->status == 400) {
        /*
         * A bad request for every token is a configuration error (wrong
         * host, environment or topic), not a fleet of dead tokens.
         */
        if (++a->bad_requests == 10) {
            mw_log("error", "APNs answered 400 (%s) to the last 10 pushes: "
                   "check apns_url (production or sandbox) and the push "
                   "certificate's topic; tokens are not marked dead",
                   mw_esc(esc, sizeof(esc), reason, strlen(reason)));
        }

        mw_apns_result(job, "", why, "", "bad_request", 0);

    } else {
        mw_apns_result(job, "", why, "", "error", 0);
    }

    mw_http_free(h);
}


void
mw_apns_unpark(mw_cert_t *cert)
{
    mw_job_t  *parked, *next;

    cert->warming = NULL;

    /*
     * Detached first: when the warm-up failed, the first push sent here
     * warms again and the others park anew, on a fresh list; draining
     * cert->parked itself would take them back forever.
     */
    next = cert->parked;
    cert->parked = NULL;

    while ((parked = next) != NULL) {
        next = parked->parked_next;
        parked->parked_next = NULL;

        if (parked->apns->ctx->stopping) {
            mw_apns_result(parked, "", "", "", "", 1);
        } else {
            mw_apns_send(parked, cert);
        }
    }
}


mw_cert_t *
mw_apns_find_cert(mw_apns_t *a, const char *topic)
{
    mw_cert_t  *c;

    for (c = a->certs; c; c = c->next) {
        if (strcmp(c->topic, topic) == 0) {
            return c;
        }
    }

    return NULL;
}


/* {"mdm":"<PushMagic>"}: the magic comes from the device */

static char *
mw_apns_payload(const char *magic)
{
    char    *s;
    json_t  *j;

    j = json_pack("{s:s}", "mdm", magic);
    if (j == NULL) {
        return NULL;
    }

    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);

    return s;
}


/* "reason" of APNs' JSON answer, or "" */

static void
mw_apns_reason(mw_http_t *h, char *reason, size_t size)
{
    json_t        *j;
    const char    *r;
    json_error_t   err;

    reason[0] = '\0';

    if (h->body_len == 0) {
        return;
    }

    j = json_loadb(h->body, h->body_len, 0, &err);
    if (j == NULL) {
        return;
    }

    r = json_string_value(json_object_get(j, "reason"));
    if (r) {
        snprintf(reason, size, "%s", r);
    }

    json_decref(j);
}


static char *
mw_dup(const char *s, size_t n)
{
    char  *p;

    p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }

    return p;
}
