
/*
 * Copyright (C) ngx_mdm contributors
 *
 * /v1/dep/proxy/NAME/<Apple path>[?query] (contract D4): any DEP call, made
 * by the worker with the name's session.  nginx never talks to Apple and
 * never blocks: the call goes to Redis as a job (RPUSH mdm:dep:proxy,
 * refused with 503 when 1,000 wait), and ngx_http_mdm_api_poll.c polls
 * for the worker's reply (GETDEL mdm:dep:proxy:reply:ID) until
 * mdm_dep_proxy_timeout: 504.
 */


#include "ngx_http_mdm_api_dep.h"
#include "ngx_http_mdm_api_poll.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_scripts.h"


#define NGX_HTTP_MDM_DEP_PATH_MAX     1024
#define NGX_HTTP_MDM_DEP_QUERY_MAX    4096


static const char *ngx_http_mdm_dep_proxy_check(ngx_http_request_t *r,
    ngx_str_t *path);
static const char *ngx_http_mdm_dep_proxy_job(ngx_http_request_t *r,
    ngx_http_mdm_api_poll_t *px, ngx_str_t *method, ngx_str_t *path,
    ngx_str_t *body, ngx_str_t *job);
static ngx_int_t ngx_http_mdm_dep_proxy_answer(ngx_http_request_t *r,
    ngx_http_mdm_api_poll_t *px, redisReply *reply);
static u_char *ngx_http_mdm_dep_proxy_type(ngx_http_request_t *r,
    const char *type);


ngx_int_t
ngx_http_mdm_api_dep_proxy(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    u_char                    *s;
    ngx_str_t                  path, body, job;
    const char                *err;
    ngx_array_t               *args;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_api_poll_t  *px;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_POST|NGX_HTTP_PUT
                       |NGX_HTTP_DELETE)))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "the DEP proxy takes GET, POST, PUT "
                                      "or DELETE");
    }

    path = p->more;

    err = ngx_http_mdm_dep_proxy_check(r, &path);
    if (err) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    ngx_str_null(&body);

    if ((r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_DELETE))
        && ngx_http_mdm_request_body(r, &body) == NGX_OK
        && body.len > NGX_HTTP_MDM_DEP_MAX_PROXY)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "the body is too large for a DEP call "
                                      "(1 MB at most)");
    }

    px = ngx_http_mdm_api_poll_state(r, 1);
    if (px == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    px->name = p->name;
    px->timeout = mlcf->dep_proxy_timeout;
    px->script = NGX_HTTP_MDM_SCRIPT_API_DEP;
    px->op = "proxy_poll";
    px->kind = "DEP proxy call";
    px->owner = "DEP name";
    px->directive = "mdm_dep_proxy_timeout";
    px->late = "the worker did not answer the DEP call in time "
               "(mdm_dep_proxy_timeout)";
    px->answer = ngx_http_mdm_dep_proxy_answer;

    err = ngx_http_mdm_dep_proxy_job(r, px, &r->method_name, &path, &body,
                                     &job);
    if (err) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    s = ngx_pnalloc(r->pool, r->method_name.len + 1 + path.len);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    px->what.data = s;
    px->what.len = ngx_sprintf(s, "%V %V", &r->method_name, &path) - s;

    args = ngx_http_mdm_api_name_args(r, "proxy_push", &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, job.data, job.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_dep_call(r, args, ngx_http_mdm_api_poll_queued);
}


/*
 * Apple's path: "/" and segments of letters, digits, "_.~-" (no "." or
 * ".." segment, nothing empty), then the query as the client escaped it.
 * The path is set to both; NULL, or why the path is refused.
 */

static const char *
ngx_http_mdm_dep_proxy_check(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char      *s, *last, c, *seg, *p;
    ngx_uint_t   i;

    s = path->data;
    last = s + path->len;

    if (path->len < 2 || path->len > NGX_HTTP_MDM_DEP_PATH_MAX) {
        goto bad;
    }

    for (seg = s + 1, p = s + 1; p <= last; p++) {
        if (p < last && *p != '/') {
            c = *p;
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                  || (c >= 'A' && c <= 'Z') || c == '_' || c == '.'
                  || c == '~' || c == '-'))
            {
                goto bad;
            }

            continue;
        }

        /* a segment ends */
        if (p == seg || (p - seg == 1 && seg[0] == '.')
            || (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
        {
            goto bad;
        }

        seg = p + 1;
    }

    if (r->args.len > NGX_HTTP_MDM_DEP_QUERY_MAX) {
        goto bad;
    }

    for (i = 0; i < r->args.len; i++) {
        if (r->args.data[i] <= 0x20 || r->args.data[i] >= 0x7f
            || r->args.data[i] == '#')
        {
            goto bad;
        }
    }

    if (r->args.len) {
        p = ngx_pnalloc(r->pool, path->len + 1 + r->args.len);
        if (p == NULL) {
            return "out of memory";
        }

        path->len = ngx_sprintf(p, "%V?%V", path, &r->args) - p;
        path->data = p;
    }

    return NULL;

bad:

    return "the DEP proxy takes /v1/dep/proxy/NAME and an Apple path such "
           "as /account or /devices/sync: letters, digits, \"/_.~-\", then "
           "an optional query";
}


/* JOBJSON of D4 into job: NULL, or why there is none */

static const char *
ngx_http_mdm_dep_proxy_job(ngx_http_request_t *r,
    ngx_http_mdm_api_poll_t *px, ngx_str_t *method, ngx_str_t *path,
    ngx_str_t *body, ngx_str_t *job)
{
    json_t      *j, *b;
    ngx_time_t  *tp;

    /* JSON strings are UTF-8: a body that is not cannot be a DEP call */
    b = json_stringn((const char *) (body->len ? body->data
                                               : (u_char *) ""),
                     body->len);
    if (b == NULL) {
        return "the body is not UTF-8 text";
    }

    tp = ngx_timeofday();

    j = json_pack("{s:s, s:s%, s:s%, s:s%, s:o, s:I}",
                  "id", (char *) px->id,
                  "name", (char *) px->name.data, px->name.len,
                  "method", (char *) method->data, method->len,
                  "path", (char *) path->data, path->len,
                  "body", b,
                  "deadline", (json_int_t) tp->sec * 1000 + tp->msec
                              + px->timeout);
    if (j == NULL) {
        return "out of memory";
    }

    job->data = ngx_http_mdm_api_dump(r, j, &job->len);

    return job->data ? NULL : "out of memory";
}


/*
 * The worker's REPLYJSON: Apple's status, body and content type, or status
 * 0 and our error: 502.
 */

static ngx_int_t
ngx_http_mdm_dep_proxy_answer(ngx_http_request_t *r,
    ngx_http_mdm_api_poll_t *px, redisReply *reply)
{
    u_char        *type;
    json_t        *j, *b;
    json_int_t     status;
    ngx_str_t      body;
    const char    *err;
    json_error_t   e;

    j = json_loadb(reply->str, reply->len, 0, &e);

    status = json_integer_value(json_object_get(j, "status"));
    b = json_object_get(j, "body");

    if (!json_is_object(j) || !json_is_integer(json_object_get(j, "status"))
        || (status != 0 && (status < 100 || status > 599))
        || (b && !json_is_string(b) && !json_is_null(b)))
    {
        json_decref(j);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: DEP proxy call \"%V\": the worker's reply is "
                      "not {\"status\", \"body\", ...}: %*s", &px->what,
                      ngx_min(reply->len, 256), reply->str);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_GATEWAY,
                                      "the worker's reply is invalid");
    }

    if (status == 0) {
        err = json_string_value(json_object_get(j, "error"));
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: DEP proxy call \"%V\" of DEP name \"%V\" "
                      "failed: %s", &px->what, &px->name,
                      err ? err : "(no error given)");

        type = ngx_pnalloc(r->pool, sizeof("the DEP call failed: ") + 512);
        if (type == NULL) {
            json_decref(j);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* a cut in a UTF-8 sequence makes api_error say "failed" */
        ngx_sprintf(type, "the DEP call failed: %*s%Z",
                    err ? ngx_min(ngx_strlen(err), 512) : 0,
                    err ? err : "");
        json_decref(j);

        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_GATEWAY,
                                      (const char *) type);
    }

    body.len = json_string_length(b);
    body.data = ngx_pnalloc(r->pool, body.len + 1);
    type = ngx_http_mdm_dep_proxy_type(r,
               json_string_value(json_object_get(j, "content_type")));

    if (body.data == NULL || type == NULL) {
        json_decref(j);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body.len) {
        ngx_memcpy(body.data, json_string_value(b), body.len);
    }

    json_decref(j);

    if (status >= 400) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mdm: DEP proxy call \"%V\" of DEP name \"%V\": Apple "
                      "answered %L: %*s", &px->what, &px->name,
                      (int64_t) status, ngx_min(body.len, 256), body.data);
    }

    return ngx_http_mdm_send(r, (ngx_uint_t) status, (const char *) type,
                             &body);
}


/* Apple's content type, if it is one a header may carry; else JSON */

static u_char *
ngx_http_mdm_dep_proxy_type(ngx_http_request_t *r, const char *type)
{
    u_char  *p;
    size_t   i, n;

    n = type ? ngx_strlen(type) : 0;

    for (i = 0; i < n; i++) {
        if (type[i] < 0x20 || type[i] >= 0x7f) {
            break;
        }
    }

    if (n == 0 || n > 128 || i < n) {
        type = "application/json";
        n = sizeof("application/json") - 1;
    }

    p = ngx_pnalloc(r->pool, n + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, type, n + 1);

    return p;
}
