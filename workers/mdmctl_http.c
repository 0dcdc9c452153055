/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: HTTP with libcurl's easy interface (one request at a time is
 * all a CLI needs), and calls of the admin API: HTTP Basic as nanomdm
 * with the API key, JSON answers, HTTP status -> exit code.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mdmctl.h"


#define MC_MAX_ANSWER  (64 * 1024 * 1024)


static size_t
mc_http_write(char *ptr, size_t size, size_t n, void *userdata)
{
    char       *nb;
    size_t      len = size * n;
    mc_resp_t  *r = userdata;

    if (r->len + len + 1 > MC_MAX_ANSWER) {
        return 0;                       /* curl fails the transfer */
    }
    nb = realloc(r->body, r->len + len + 1);
    if (nb == NULL) {
        return 0;
    }
    r->body = nb;
    memcpy(r->body + r->len, ptr, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}


/* 0 and resp filled (status, body) when the server answered; else
 * MC_SERVER after saying why on stderr */
int
mc_http(const mc_conf_t *conf, const char *method, const char *url,
    const char *auth, const char *const *headers, const char *body,
    size_t len, mc_resp_t *resp)
{
    CURL               *c;
    CURLcode            cc;
    struct curl_slist  *hl = NULL, *t;
    char                errbuf[CURL_ERROR_SIZE];

    memset(resp, 0, sizeof(*resp));
    c = curl_easy_init();
    if (c == NULL) {
        mc_err("cannot start libcurl");
        return MC_SERVER;
    }

    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, conf->timeout < 10
                                                ? conf->timeout : 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, conf->timeout);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mc_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mdmctl/0.1");
    if (conf->cacert) {
        curl_easy_setopt(c, CURLOPT_CAINFO, conf->cacert);
    }
    if (auth) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, auth);
    }
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
    }
    for (; headers && *headers; headers++) {
        t = curl_slist_append(hl, *headers);
        if (t == NULL) {
            break;
        }
        hl = t;
    }
    /* no "Expect: 100-continue" round trip for large bodies */
    t = curl_slist_append(hl, "Expect:");
    if (t) {
        hl = t;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);

    if (conf->verbose) {
        fprintf(stderr, "mdmctl: %s %s (%zu bytes)\n", method, url,
                body ? len : 0);
    }

    cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);

    if (cc != CURLE_OK) {
        mc_err("%s %s: %s", method, url,
               errbuf[0] ? errbuf : curl_easy_strerror(cc));
        mc_resp_free(resp);
        return MC_SERVER;
    }
    if (resp->body == NULL) {
        resp->body = mc_strdup("");
    }
    return 0;
}


void
mc_resp_free(mc_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}


int
mc_status_rc(long status)
{
    if (status >= 200 && status < 300) {
        return status == 207 ? MC_PARTIAL : MC_OK;
    }
    if (status >= 400 && status < 500) {
        return MC_REFUSED;
    }
    return MC_SERVER;
}


/* percent-encodes all but unreserved characters */
char *
mc_escape(const char *s)
{
    char                 *out, *p;
    static const char     hex[] = "0123456789ABCDEF";

    out = malloc(3 * strlen(s) + 1);
    if (out == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    for (p = out; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            *p++ = c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}


/* the server's URL + a formatted path */
char *
mc_url(const mc_conf_t *conf, const char *fmt, ...)
{
    int      n;
    char    *out;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    out = malloc(strlen(conf->server) + n + 1);
    if (out == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    strcpy(out, conf->server);
    va_start(ap, fmt);
    vsnprintf(out + strlen(conf->server), n + 1, fmt, ap);
    va_end(ap);
    return out;
}


/*
 * One call of the admin API: path is what follows the server's URL.
 * Returns the decoded answer with *rc its exit code (0, 1 for a 207, 4
 * for a 4xx, 3 for a 5xx), or NULL: no answer or not JSON (*rc = 3, said
 * on stderr), or an {"error": ...} answer (said on stderr, and with
 * --json also printed on stdout; *rc from the status).
 */
json_t *
mc_api(const mc_conf_t *conf, const char *method, const char *path,
    const char *body, size_t len,
    int *rc)
{
    int           r;
    char         *url, *auth;
    size_t        alen;
    json_t       *j, *e;
    mc_resp_t     resp;
    json_error_t  err;
    const char   *hdrs[] = { "Accept: application/json", NULL, NULL };

    url = mc_url(conf, "%s", path);
    alen = strlen(conf->api_key) + sizeof("nanomdm:");
    auth = malloc(alen);
    if (auth == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    snprintf(auth, alen, "nanomdm:%s", conf->api_key);
    if (body && len && (body[0] == '{' || body[0] == '[')) {
        hdrs[1] = "Content-Type: application/json";
    }

    r = mc_http(conf, method, url, auth, hdrs, body, len, &resp);
    free(auth);
    if (r != 0) {
        free(url);
        *rc = MC_SERVER;
        return NULL;
    }

    j = json_loadb(resp.body, resp.len, 0, &err);
    if (j == NULL || !json_is_object(j)) {
        mc_err("%s %s: HTTP %ld and no JSON object in the answer (is the "
               "server's URL right?)", method, url, resp.status);
        json_decref(j);
        mc_resp_free(&resp);
        free(url);
        *rc = MC_SERVER;
        return NULL;
    }
    mc_resp_free(&resp);

    *rc = mc_status_rc(resp.status);
    if (*rc == MC_SERVER && resp.status < 500) {
        mc_err("%s %s: unexpected HTTP %ld", method, url, resp.status);
    }

    e = json_object_get(j, "error");
    if (resp.status >= 300 && json_is_string(e)) {
        mc_err("%s %s: HTTP %ld: %s", method, path, resp.status,
               json_string_value(e));
        if (conf->json) {
            mc_print_json(j);
        }
        json_decref(j);
        free(url);
        return NULL;
    }

    free(url);
    return j;
}
