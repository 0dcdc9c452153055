
/*
 * Copyright (C) ngx_mdm contributors
 *
 * /v1/vpp/...: Apps and Books locations (one per content token), their
 * config, the assets and assignments the worker keeps, sync now, installs
 * and removals (contracts V1-V3).  This file routes and holds what the VPP
 * files share; each endpoint is one call of lua/api_vpp.lua, and the calls
 * that need Apple (token, sync) wait for the worker's reply through
 * ngx_http_mdm_api_poll.c.
 */


#include "ngx_http_mdm_api_vpp.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_util.h"


static ngx_int_t ngx_http_mdm_api_vpp_path(ngx_http_mdm_api_route_t *rt,
    ngx_http_mdm_vpp_path_t *p);
static ngx_int_t ngx_http_mdm_api_vpp_tokens(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);
static ngx_int_t ngx_http_mdm_api_vpp_config(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);
static ngx_int_t ngx_http_mdm_api_vpp_url(json_t *j, const char *key,
    ngx_str_t *url);
static ngx_int_t ngx_http_mdm_api_vpp_assets(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);
static ngx_int_t ngx_http_mdm_api_vpp_assignments(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);
static ngx_int_t ngx_http_mdm_api_vpp_sync(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);
static ngx_int_t ngx_http_mdm_api_vpp_answer(ngx_http_request_t *r,
    ngx_http_mdm_api_poll_t *pl, redisReply *reply);
static ngx_int_t ngx_http_mdm_api_vpp_delete(ngx_http_request_t *r,
    ngx_str_t *name, ngx_uint_t first);
static void ngx_http_mdm_api_vpp_deleted(ngx_http_request_t *r,
    redisReply *reply, const char *err);


#define ngx_http_mdm_vpp_get(r)  ((r)->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))


ngx_int_t
ngx_http_mdm_api_vpp(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_http_mdm_vpp_path_t  p;

    if (ngx_http_mdm_api_vpp_path(rt, &p) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "unknown VPP endpoint: /v1/vpp/ takes "
                                      "tokens, config, assets, assignments, "
                                      "sync, install or remove");
    }

    if (p.name.len == 0 && ngx_http_mdm_api_is(p.sub, "tokens")) {
        return ngx_http_mdm_api_vpp_tokens(r, &p);
    }

    if (!ngx_http_mdm_api_valid_name(&p.name)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "a VPP location's name is 1 to 64 "
                                      "letters, digits, \".\", \"_\" or "
                                      "\"-\"");
    }

    if (p.more.len && !ngx_http_mdm_api_is(p.sub, "install")) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "unknown VPP endpoint: nothing "
                                      "follows the location's name here");
    }

    if (ngx_http_mdm_api_is(p.sub, "tokens")) {
        return ngx_http_mdm_api_vpp_tokens(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "config")) {
        return ngx_http_mdm_api_vpp_config(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "assets")) {
        return ngx_http_mdm_api_vpp_assets(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "assignments")) {
        return ngx_http_mdm_api_vpp_assignments(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "sync")) {
        return ngx_http_mdm_api_vpp_sync(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "install")) {
        if (p.more.len) {
            if (!ngx_http_mdm_vpp_get(r)) {
                return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "an install's outcome takes "
                                              "GET");
            }

            return ngx_http_mdm_api_vpp_install_get(r, &p);
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "install takes POST");
        }

        return ngx_http_mdm_api_vpp_install(r, &p, 0);
    }

    /* remove: the only one left */
    if (r->method != NGX_HTTP_POST) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "remove takes POST");
    }

    return ngx_http_mdm_api_vpp_install(r, &p, 1);
}


/* rt->rest split as SUB[/NAME[/MORE]]: NGX_OK, or NGX_DECLINED */

static ngx_int_t
ngx_http_mdm_api_vpp_path(ngx_http_mdm_api_route_t *rt,
    ngx_http_mdm_vpp_path_t *p)
{
    static const char  *subs[] = {
        "tokens", "config", "assets", "assignments", "sync", "install",
        "remove", NULL
    };

    if (ngx_http_mdm_api_split(&rt->rest, subs, &p->sub, &p->name, &p->more)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* more without its "/"; "install/NAME/" keeps the "/": no id */
    if (p->more.len > 1) {
        p->more.data++;
        p->more.len--;
    }

    return NGX_OK;
}


/* done NULL: the reply is {status, JSON body}, sent as it is */

ngx_int_t
ngx_http_mdm_api_vpp_call(ngx_http_request_t *r, ngx_array_t *args,
    ngx_http_mdm_redis_done_pt done)
{
    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_API_VPP, 0, args,
                                 done ? done : ngx_http_mdm_api_script_done);
}


static ngx_int_t
ngx_http_mdm_api_vpp_simple(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p,
    const char *op)
{
    return ngx_http_mdm_api_name_call(r, NGX_HTTP_MDM_SCRIPT_API_VPP, op,
                                      &p->name);
}


/*
 * The body as a JSON object, at most max bytes: NGX_OK with *j (the
 * caller's to release), or NGX_DECLINED with the answer sent and *answer
 * what to finalize with.
 */

ngx_int_t
ngx_http_mdm_api_vpp_json_body(ngx_http_request_t *r, size_t max, json_t **j,
    ngx_int_t *answer)
{
    ngx_str_t     body;
    json_error_t  e;

    if (ngx_http_mdm_api_body(r, max, "the body is empty: a JSON object "
                              "expected", &body, answer)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    *j = json_loadb((const char *) body.data, body.len,
                    JSON_REJECT_DUPLICATES, &e);

    if (*j == NULL || !json_is_object(*j)) {
        json_decref(*j);
        *answer = ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                         "the body is not a JSON object");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * JOBJSON of V2: {"id", "name", "op", "deadline", <extra's keys>}; the id
 * is the waiter's, the deadline mdm_vpp_timeout from now when the admin
 * waits for the reply (0: none).  extra is taken.
 */

ngx_int_t
ngx_http_mdm_api_vpp_job(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p,
    const char *op, json_t *extra, ngx_uint_t wait, ngx_str_t *job)
{
    json_t                   *j;
    ngx_time_t               *tp;
    json_int_t                deadline;
    ngx_http_mdm_api_poll_t  *pl;
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    pl = ngx_http_mdm_api_poll_state(r, 1);
    if (pl == NULL) {
        json_decref(extra);
        return NGX_ERROR;
    }

    tp = ngx_timeofday();
    deadline = wait ? (json_int_t) tp->sec * 1000 + tp->msec
                      + mlcf->vpp_timeout
                    : 0;

    j = json_pack("{s:s, s:s%, s:s, s:I}",
                  "id", (char *) pl->id,
                  "name", (char *) p->name.data, p->name.len,
                  "op", op,
                  "deadline", deadline);

    if (j == NULL || (extra && json_object_update(j, extra) != 0)) {
        json_decref(j);
        json_decref(extra);
        return NGX_ERROR;
    }

    json_decref(extra);

    job->data = ngx_http_mdm_api_dump(r, j, &job->len);

    return job->data ? NGX_OK : NGX_ERROR;
}


/* the waiter of a job whose reply the admin waits for (V2) */

ngx_int_t
ngx_http_mdm_api_vpp_waiting(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p,
    const char *what)
{
    ngx_http_mdm_api_poll_t  *pl;
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    pl = ngx_http_mdm_api_poll_state(r, 0);
    if (pl == NULL) {
        return NGX_ERROR;
    }

    pl->name = p->name;
    pl->timeout = mlcf->vpp_timeout;
    pl->script = NGX_HTTP_MDM_SCRIPT_API_VPP;
    pl->op = "reply_poll";
    pl->kind = "VPP job";
    pl->owner = "VPP location";
    pl->directive = "mdm_vpp_timeout";
    pl->late = "the worker did not answer in time (mdm_vpp_timeout)";
    pl->what.data = (u_char *) what;
    pl->what.len = ngx_strlen(what);
    pl->answer = ngx_http_mdm_api_vpp_answer;

    return NGX_OK;
}


/*
 * A job whose reply the admin waits for (V2): the script's op queues it,
 * then the polls wait for the worker's answer or mdm_vpp_timeout.  extra
 * (the job's own keys, or NULL) is taken.
 */

ngx_int_t
ngx_http_mdm_api_vpp_ask(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p,
    const char *what, json_t *extra, const char *op)
{
    ngx_str_t     job;
    ngx_array_t  *args;

    if (ngx_http_mdm_api_vpp_job(r, p, what, extra, 1, &job) != NGX_OK
        || ngx_http_mdm_api_vpp_waiting(r, p, what) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args = ngx_http_mdm_api_name_args(r, op, &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, job.data, job.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_vpp_call(r, args, ngx_http_mdm_api_poll_queued);
}


/* REPLYJSON of V2: {"status": the admin's status, "body": {...}} */

static ngx_int_t
ngx_http_mdm_api_vpp_answer(ngx_http_request_t *r, ngx_http_mdm_api_poll_t *pl,
    redisReply *reply)
{
    json_t        *j, *b;
    ngx_str_t      body;
    json_int_t     status;
    json_error_t   e;

    j = json_loadb(reply->str, reply->len, 0, &e);

    status = json_integer_value(json_object_get(j, "status"));
    b = json_object_get(j, "body");

    if (!json_is_object(j) || status < 100 || status > 599
        || !json_is_object(b))
    {
        json_decref(j);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: VPP job \"%V\" of VPP location \"%V\": the "
                      "worker's reply is not {\"status\", \"body\"}: %*s",
                      &pl->what, &pl->name, ngx_min(reply->len, 256),
                      reply->str);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_GATEWAY,
                                      "the worker's reply is invalid");
    }

    json_incref(b);
    json_decref(j);

    body.data = ngx_http_mdm_api_dump(r, b, &body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status >= 400) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mdm: VPP job \"%V\" of VPP location \"%V\" answered "
                      "%L: %*s", &pl->what, &pl->name, (int64_t) status,
                      ngx_min(body.len, 256), body.data);
    }

    return ngx_http_mdm_send(r, (ngx_uint_t) status, "application/json",
                             &body);
}


/* GET /v1/vpp/tokens[/NAME], PUT and DELETE /v1/vpp/tokens/NAME */

static ngx_int_t
ngx_http_mdm_api_vpp_tokens(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p)
{
    if (p->name.len == 0) {
        if (!ngx_http_mdm_vpp_get(r)) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "/v1/vpp/tokens takes GET");
        }

        return ngx_http_mdm_api_vpp_simple(r, p, "tokens");
    }

    if (ngx_http_mdm_vpp_get(r)) {
        return ngx_http_mdm_api_vpp_simple(r, p, "token_get");
    }

    if (r->method == NGX_HTTP_DELETE) {
        return ngx_http_mdm_api_vpp_delete(r, &p->name, 1);
    }

    if (r->method == NGX_HTTP_PUT) {
        return ngx_http_mdm_api_vpp_token_put(r, p);
    }

    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "a VPP token takes GET, PUT or DELETE");
}


/*
 * DELETE /v1/vpp/tokens/NAME: lua/api_vpp.lua's delete in bounded steps,
 * called again while it answers 100 (more to do)
 */

static ngx_int_t
ngx_http_mdm_api_vpp_delete(ngx_http_request_t *r, ngx_str_t *name,
    ngx_uint_t first)
{
    ngx_array_t  *args;

    args = ngx_http_mdm_api_name_args(r, "delete", name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, (u_char *) (first ? "0" : "1"), 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_vpp_call(r, args, ngx_http_mdm_api_vpp_deleted);
}


static void
ngx_http_mdm_api_vpp_deleted(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t                 rc;
    ngx_http_mdm_api_route_t  rt;
    ngx_http_mdm_vpp_path_t   p;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_INTEGER
        && reply->element[0]->integer == 100)
    {
        if (ngx_http_mdm_api_route(r, &rt) != NGX_OK
            || ngx_http_mdm_api_vpp_path(&rt, &p) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rc = ngx_http_mdm_api_vpp_delete(r, &p.name, 0);
        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    ngx_http_finalize_request(r, ngx_http_mdm_api_script_reply(r, reply,
                                                               err));
}


/* GET|PUT /v1/vpp/config/NAME: {"base_url", "notify_url"} */

static ngx_int_t
ngx_http_mdm_api_vpp_config(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p)
{
    json_t       *j, *v;
    ngx_int_t     answer;
    ngx_str_t     base, notify;
    const char   *key;
    ngx_array_t  *args;

    if (ngx_http_mdm_vpp_get(r)) {
        return ngx_http_mdm_api_vpp_simple(r, p, "config_get");
    }

    if (r->method != NGX_HTTP_PUT) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "VPP config takes GET or PUT");
    }

    if (ngx_http_mdm_api_vpp_json_body(r, NGX_HTTP_MDM_VPP_MAX_JSON, &j,
                                       &answer)
        != NGX_OK)
    {
        return answer;
    }

    json_object_foreach(j, key, v) {
        if (ngx_strcmp(key, "base_url") != 0
            && ngx_strcmp(key, "notify_url") != 0)
        {
            json_decref(j);
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "VPP config takes base_url and "
                                          "notify_url only");
        }
    }

    if (ngx_http_mdm_api_vpp_url(j, "base_url", &base) != NGX_OK
        || ngx_http_mdm_api_vpp_url(j, "notify_url", &notify) != NGX_OK)
    {
        json_decref(j);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "base_url and notify_url are http:// "
                                      "or https:// URLs of at most 512 "
                                      "printable characters, or null");
    }

    /* the arguments must outlive j: a call may wait for Redis */
    base.data = ngx_pstrdup(r->pool, &base);
    notify.data = ngx_pstrdup(r->pool, &notify);
    json_decref(j);

    args = ngx_http_mdm_api_name_args(r, "config_put", &p->name);
    if (args == NULL || (base.len && base.data == NULL)
        || (notify.len && notify.data == NULL)
        || ngx_http_mdm_push_arg(args, base.data, base.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, notify.data, notify.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_vpp_call(r, args, NULL);
}


/* an absent or null key is "" (the default); else an http(s) URL */

static ngx_int_t
ngx_http_mdm_api_vpp_url(json_t *j, const char *key, ngx_str_t *url)
{
    json_t      *v;
    ngx_uint_t   i;

    v = json_object_get(j, key);
    ngx_str_set(url, "");

    if (v == NULL || json_is_null(v)) {
        return NGX_OK;
    }

    if (!json_is_string(v)) {
        return NGX_ERROR;
    }

    url->data = (u_char *) json_string_value(v);
    url->len = json_string_length(v);

    if (url->len == 0) {
        return NGX_OK;
    }

    if (url->len > NGX_HTTP_MDM_VPP_URL_MAX
        || !((url->len > 7 && ngx_strncmp(url->data, "http://", 7) == 0)
             || (url->len > 8 && ngx_strncmp(url->data, "https://", 8) == 0)))
    {
        return NGX_ERROR;
    }

    for (i = 0; i < url->len; i++) {
        if (url->data[i] <= 0x20 || url->data[i] >= 0x7f) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* GET /v1/vpp/assets/NAME[?cursor=&limit=] */

static ngx_int_t
ngx_http_mdm_api_vpp_assets(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p)
{
    ngx_int_t     rc;
    ngx_array_t  *args;

    if (!ngx_http_mdm_vpp_get(r)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "VPP assets take GET");
    }

    args = ngx_http_mdm_api_name_args(r, "assets", &p->name);
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_paged(r, args, &rc) != NGX_OK) {
        return rc;
    }

    return ngx_http_mdm_api_vpp_call(r, args, NULL);
}


/* GET /v1/vpp/assignments/NAME?serial=S | ?adamId=N[&cursor=&limit=] */

static ngx_int_t
ngx_http_mdm_api_vpp_assignments(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p)
{
    ngx_int_t     rc;
    ngx_str_t     serial, adam;
    ngx_uint_t    i;
    ngx_array_t  *args;

    if (!ngx_http_mdm_vpp_get(r)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "VPP assignments take GET");
    }

    if (ngx_http_mdm_arg(r, "serial", &serial) == NGX_ERROR
        || ngx_http_mdm_arg(r, "adamId", &adam) == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (adam.len == 0 && ngx_http_mdm_arg(r, "adam_id", &adam) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < adam.len; i++) {
        if (adam.data[i] < '0' || adam.data[i] > '9') {
            break;
        }
    }

    if ((serial.len == 0) == (adam.len == 0)
        || (serial.len && !ngx_http_mdm_api_valid_name(&serial))
        || i < adam.len || adam.len > 20)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "VPP assignments take serial= (a "
                                      "serial number) or adamId= (digits), "
                                      "one of them");
    }

    args = ngx_http_mdm_api_name_args(r, "assignments", &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, (u_char *) (serial.len ? "serial"
                                                              : "adam_id"),
                                 serial.len ? 6 : 7) != NGX_OK
        || ngx_http_mdm_push_arg(args, serial.len ? serial.data : adam.data,
                                 serial.len ? serial.len : adam.len)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_paged(r, args, &rc) != NGX_OK) {
        return rc;
    }

    return ngx_http_mdm_api_vpp_call(r, args, NULL);
}


/* POST /v1/vpp/sync/NAME: the worker refreshes now and says how it went */

static ngx_int_t
ngx_http_mdm_api_vpp_sync(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p)
{
    if (r->method != NGX_HTTP_POST) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "VPP sync takes POST");
    }

    return ngx_http_mdm_api_vpp_ask(r, p, "sync", NULL, "sync");
}


char *
ngx_http_mdm_api_vpp_merge_conf(ngx_conf_t *cf, ngx_http_mdm_loc_conf_t *prev,
    ngx_http_mdm_loc_conf_t *conf)
{
    ngx_conf_merge_msec_value(conf->vpp_timeout, prev->vpp_timeout, 30000);

    if (conf->vpp_timeout < 100 || conf->vpp_timeout > 300000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_vpp_timeout is 100ms to 5m");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
