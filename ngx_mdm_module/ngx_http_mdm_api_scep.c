
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The SCEP CA's admin endpoints: POST /v1/challenge (a one-time challenge,
 * contract E1) and GET /v1/certificates (what the CA issued, contract E2).
 * Both are one call of lua/scep.lua; the JSON is built here with jansson.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_scep.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_util.h"

#include <jansson.h>


static void ngx_http_mdm_api_challenge_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static void ngx_http_mdm_api_certificates_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_api_scep_send(ngx_http_request_t *r,
    json_t *j);
static ngx_uint_t ngx_http_mdm_api_scep_digits(ngx_str_t *s);


/* POST /v1/challenge */

ngx_int_t
ngx_http_mdm_api_challenge(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    u_char                    *p;
    ngx_str_t                  value, *a;
    ngx_time_t                *tp;
    ngx_array_t               *args;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_conf_t  *scf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "challenge takes POST");
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;

    if (ngx_http_mdm_challenge_new(r, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* KEYS: the challenge; ARGV: "challenge", now (ms), TTL (s) */
    args = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    a = args ? ngx_array_push_n(args, 2) : NULL;
    p = ngx_pnalloc(r->pool, sizeof(MDM_KEY_SCEP_CHALLENGE) - 1 + value.len);

    if (a == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a[0].data = p;
    a[0].len = ngx_sprintf(p, MDM_KEY_SCEP_CHALLENGE "%V", &value) - p;
    ngx_str_set(&a[1], "challenge");

    tp = ngx_timeofday();

    if (ngx_http_mdm_api_push_num(r, args,
                                  (int64_t) tp->sec * 1000 + tp->msec)
        != NGX_OK
        || ngx_http_mdm_api_push_num(r, args, scf->challenge_ttl) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "mdm: API: a one-time SCEP challenge, valid %T s",
                  scf->challenge_ttl);

    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_SCEP, 1, args,
                                      ngx_http_mdm_api_challenge_done);
}


/* {"ok", value, ttl} */

static void
ngx_http_mdm_api_challenge_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    json_t  *j;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_finalize_request(r, ngx_http_mdm_api_unavailable(r,
                                      err ? err : "gave an unexpected reply"));
        return;
    }

    /* "string" is MicroMDM's name for it, so its tools work as they are */
    j = json_pack("{s:s%,s:s%,s:I}",
                  "challenge", reply->element[1]->str,
                  (size_t) reply->element[1]->len,
                  "string", reply->element[1]->str,
                  (size_t) reply->element[1]->len,
                  "expires_in", (json_int_t) reply->element[2]->integer);

    ngx_http_finalize_request(r, ngx_http_mdm_api_scep_send(r, j));
}


/*
 * GET /v1/certificates[?subject=&cert_expires_before=&cursor=&limit=]:
 * cert_expires_before as on GET /v1/enrollments; expiring_before, its
 * earlier name here, is still read when it is absent
 */

ngx_int_t
ngx_http_mdm_api_certificates(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    u_char       *p;
    ngx_int_t     n;
    ngx_str_t     subject, before, cursor, limit, *a;
    ngx_array_t  *args;

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "certificates takes GET");
    }

    if (ngx_http_mdm_arg(r, "subject", &subject) == NGX_ERROR
        || ngx_http_mdm_arg(r, "cert_expires_before", &before) == NGX_ERROR
        || (before.len == 0
            && ngx_http_mdm_arg(r, "expiring_before", &before) == NGX_ERROR)
        || ngx_http_mdm_arg(r, "cursor", &cursor) == NGX_ERROR
        || ngx_http_mdm_arg(r, "limit", &limit) == NGX_ERROR)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "bad query argument encoding");
    }

    n = limit.len ? ngx_atoi(limit.data, limit.len) : NGX_HTTP_MDM_API_PAGE;

    if (n <= 0 || n > NGX_HTTP_MDM_API_MAX_PAGE
        || (before.len && !ngx_http_mdm_api_scep_digits(&before))
        || (cursor.len && !ngx_http_mdm_api_scep_digits(&cursor))
        || subject.len > 512)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "cert_expires_before (unix seconds) "
                                      "and cursor are numbers, limit 1 to "
                                      "1000, subject up to 512 bytes");
    }

    /* KEYS: the index; ARGV: "list", max score, offset, count, subject */
    args = ngx_array_create(r->pool, 6, sizeof(ngx_str_t));
    a = args ? ngx_array_push_n(args, 3) : NULL;
    p = ngx_pnalloc(r->pool, before.len + 1);

    if (a == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&a[0], MDM_KEY_SCEP_CERTS);
    ngx_str_set(&a[1], "list");

    /* notAfter strictly before the date */
    if (before.len) {
        a[2].data = p;
        a[2].len = ngx_sprintf(p, "(%V", &before) - p;

    } else {
        ngx_str_set(&a[2], "+inf");
    }

    if (cursor.len == 0) {
        ngx_str_set(&cursor, "0");
    }

    if (ngx_http_mdm_push_arg(args, cursor.data, cursor.len) != NGX_OK
        || ngx_http_mdm_api_push_num(r, args, n) != NGX_OK
        || ngx_http_mdm_push_arg(args, subject.data, subject.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_SCEP, 1, args,
                                      ngx_http_mdm_api_certificates_done);
}


/* {"ok", next cursor or "", then serial, subject, notAfter, sha256,
 * issued_at for each certificate} */

static void
ngx_http_mdm_api_certificates_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    size_t       i, k;
    json_t      *j, *list, *c;
    redisReply  *e;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2 || (reply->elements - 2) % 5 != 0)
    {
        ngx_http_finalize_request(r, ngx_http_mdm_api_unavailable(r,
                                      err ? err : "gave an unexpected reply"));
        return;
    }

    for (i = 1; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    list = json_array();
    j = json_pack("{s:o}", "certificates", list);

    for (i = 2; j && i < reply->elements; i += 5) {
        e = reply->element[i];

        /* the subject is RFC 2253 text: escaped to ASCII when written */
        c = json_pack("{s:s%,s:s%,s:I,s:s%,s:I}",
                      "serial", e->str, (size_t) e->len,
                      "subject", reply->element[i + 1]->str,
                      (size_t) reply->element[i + 1]->len,
                      "not_after",
                      (json_int_t) ngx_atotm((u_char *)
                                             reply->element[i + 2]->str,
                                             reply->element[i + 2]->len),
                      "sha256", reply->element[i + 3]->str,
                      (size_t) reply->element[i + 3]->len,
                      "issued_at",
                      (json_int_t) ngx_atoof((u_char *)
                                             reply->element[i + 4]->str,
                                             reply->element[i + 4]->len));

        if (c == NULL || json_array_append_new(list, c) != 0) {
            json_decref(j);
            j = NULL;
        }
    }

    k = reply->element[1]->len;

    if (j && k
        && json_object_set_new(j, "next_cursor",
                               json_stringn(reply->element[1]->str, k))
           != 0)
    {
        json_decref(j);
        j = NULL;
    }

    ngx_http_finalize_request(r, ngx_http_mdm_api_scep_send(r, j));
}


/* sends j (NULL: jansson ran out of memory), compact, and releases it */

static ngx_int_t
ngx_http_mdm_api_scep_send(ngx_http_request_t *r, json_t *j)
{
    char       *s;
    ngx_str_t   body;

    s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, body.len + 1);

    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, s, body.len);
    body.data[body.len++] = '\n';
    free(s);

    return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/json", &body);
}


static ngx_uint_t
ngx_http_mdm_api_scep_digits(ngx_str_t *s)
{
    size_t  i;

    if (s->len > 19) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return 0;
        }
    }

    return 1;
}
