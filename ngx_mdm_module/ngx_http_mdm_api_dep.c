
/*
 * Copyright (C) ngx_mdm contributors
 *
 * /v1/dep/...: NanoDEP's API (tokens, config, assigner, dep_names) under
 * /v1/dep/ so that DEP and DDM names never clash, plus sync now, status
 * and the devices the worker recorded (contracts D1-D3).  This file routes
 * and holds what the DEP files share; the module never talks to Apple, the
 * worker does (see the proxy file).  Each endpoint is one call of
 * lua/api_dep.lua.
 */


#include "ngx_http_mdm_api_dep.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_util.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


/* the most ?dep_name= one query may name */
#define NGX_HTTP_MDM_DEP_FILTER_MAX   100


typedef struct {
    ngx_http_request_t           *request;
    ngx_http_mdm_dep_work_pt      work;
    ngx_http_mdm_dep_done_pt      done;
    void                         *job;
} ngx_http_mdm_dep_task_t;


static ngx_int_t ngx_http_mdm_api_dep_path(ngx_http_mdm_api_route_t *rt,
    ngx_http_mdm_dep_path_t *p);
static ngx_int_t ngx_http_mdm_api_dep_names(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);
static ngx_int_t ngx_http_mdm_api_dep_devices(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);
#if (NGX_THREADS)
static void ngx_http_mdm_api_dep_thread(void *data, ngx_log_t *log);
static void ngx_http_mdm_api_dep_thread_done(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_mdm_api_dep(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_http_mdm_dep_path_t  p;

    if (ngx_http_mdm_api_dep_path(rt, &p) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "unknown DEP endpoint: /v1/dep/ takes "
                                      "tokenpki, tokens, config, assigner, "
                                      "dep_names, sync, status, devices or "
                                      "proxy");
    }

    if (ngx_http_mdm_api_is(p.sub, "dep_names")) {
        return ngx_http_mdm_api_dep_names(r, &p);
    }

    /* every other one names a DEP name */
    if (!ngx_http_mdm_api_valid_name(&p.name)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "a DEP name is 1 to 64 letters, "
                                      "digits, \".\", \"_\" or \"-\"");
    }

    if (ngx_http_mdm_api_is(p.sub, "proxy")) {
        return ngx_http_mdm_api_dep_proxy(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "devices")) {
        return ngx_http_mdm_api_dep_devices(r, &p);
    }

    if (p.more.len) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "unknown DEP endpoint: nothing "
                                      "follows the DEP name here");
    }

    if (ngx_http_mdm_api_is(p.sub, "tokenpki")) {
        return ngx_http_mdm_api_dep_tokenpki(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "tokens")) {
        return ngx_http_mdm_api_dep_tokens(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "config")) {
        return ngx_http_mdm_api_dep_config(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "assigner")) {
        return ngx_http_mdm_api_dep_assigner(r, &p);
    }

    if (ngx_http_mdm_api_is(p.sub, "sync")) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_mdm_api_dep_method(r, NGX_HTTP_POST,
                                               "DEP sync takes POST");
        }

        return ngx_http_mdm_api_dep_simple(r, &p, "sync");
    }

    /* status: the only one left */
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_mdm_api_dep_method(r, NGX_HTTP_GET,
                                           "DEP status takes GET");
    }

    return ngx_http_mdm_api_dep_simple(r, &p, "status");
}


/* rt->rest split as SUB[/NAME[/MORE]]: NGX_OK, or NGX_DECLINED */

static ngx_int_t
ngx_http_mdm_api_dep_path(ngx_http_mdm_api_route_t *rt,
    ngx_http_mdm_dep_path_t *p)
{
    static const char  *subs[] = {
        "tokenpki", "tokens", "config", "assigner", "dep_names", "sync",
        "status", "devices", "proxy", NULL
    };

    if (ngx_http_mdm_api_split(&rt->rest, subs, &p->sub, &p->name, &p->more)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* dep_names takes no name; the others get "bad name" for none */
    if (p->name.data && ngx_http_mdm_api_is(p->sub, "dep_names")) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_api_dep_method(ngx_http_request_t *r, ngx_uint_t allowed,
    const char *message)
{
    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED, message);
}


/* done NULL: the reply is {status, JSON body}, sent as it is */

ngx_int_t
ngx_http_mdm_api_dep_call(ngx_http_request_t *r, ngx_array_t *args,
    ngx_http_mdm_redis_done_pt done)
{
    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_API_DEP, 0, args,
                                 done ? done : ngx_http_mdm_api_script_done);
}


ngx_int_t
ngx_http_mdm_api_dep_simple(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p,
    const char *op)
{
    return ngx_http_mdm_api_name_call(r, NGX_HTTP_MDM_SCRIPT_API_DEP, op,
                                      &p->name);
}


/*
 * A script's {status, JSON body} (with elements > 2, more may follow): the
 * answer sent, and what to finalize with.  Refusals are logged once, at
 * "info", like the rest of the API.
 */

ngx_int_t
ngx_http_mdm_api_dep_reply(ngx_http_request_t *r, redisReply *reply,
    const char *err, ngx_uint_t elements)
{
    ngx_str_t    json;
    redisReply  *status, *body;

    if (reply == NULL) {
        return ngx_http_mdm_api_unavailable(r, err);
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->elements > elements
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: DEP API script failed: %*s",
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0), reply->str);
        return ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "redis script failed");
    }

    status = reply->element[0];
    body = reply->element[1];

    json.len = body->len;
    json.data = ngx_pnalloc(r->pool, json.len + 1);
    if (json.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(json.data, body->str, json.len);

    if (status->integer >= 400) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mdm: API request \"%V\" answered %i: %*s", &r->uri,
                      (ngx_int_t) status->integer,
                      ngx_min(json.len, 256), json.data);
    }

    return ngx_http_mdm_send(r, (ngx_uint_t) status->integer,
                             "application/json", &json);
}


/*
 * Runs work(job) in the thread pool (mdm_dep_thread_pool), then done(r, job)
 * back in nginx; the request is "blocked" meanwhile so nginx does not free
 * it under the thread.  Without a pool both run here.  done finalizes.
 * Returns NGX_DONE, or what to finalize with.
 */

ngx_int_t
ngx_http_mdm_api_dep_post(ngx_http_request_t *r, ngx_http_mdm_dep_work_pt work,
    ngx_http_mdm_dep_done_pt done, void *job)
{
#if (NGX_THREADS)
    ngx_thread_task_t        *task;
    ngx_http_mdm_dep_task_t  *t;
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    if (mlcf->dep_thread_pool) {
        task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_mdm_dep_task_t));
        if (task == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        t = task->ctx;
        t->request = r;
        t->work = work;
        t->done = done;
        t->job = job;

        task->handler = ngx_http_mdm_api_dep_thread;
        task->event.data = t;
        task->event.handler = ngx_http_mdm_api_dep_thread_done;

        if (ngx_thread_task_post(mlcf->dep_thread_pool, task) != NGX_OK) {
            /* the pool's queue is full: nginx logged it */
            return ngx_http_mdm_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "the thread pool is busy");
        }

        r->main->blocked++;

        return NGX_DONE;
    }
#endif

    work(job);
    done(r, job);

    return NGX_DONE;
}


#if (NGX_THREADS)

static void
ngx_http_mdm_api_dep_thread(void *data, ngx_log_t *log)
{
    ngx_http_mdm_dep_task_t  *t = data;

    t->work(t->job);

    ngx_http_mdm_thread_task_end();
}


static void
ngx_http_mdm_api_dep_thread_done(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_mdm_dep_task_t  *t;

    t = ev->data;
    r = t->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;

    t->done(r, t->job);

    ngx_http_run_posted_requests(c);
}

#endif


/*
 * The body as JSON, at most max bytes: NGX_OK with *j (the caller's to
 * release), or NGX_DECLINED with the answer sent and *answer what to
 * finalize with.
 */

ngx_int_t
ngx_http_mdm_api_dep_json_body(ngx_http_request_t *r, size_t max, json_t **j,
    ngx_int_t *answer)
{
    u_char        *msg;
    ngx_str_t      body;
    json_error_t   e;

    if (ngx_http_mdm_api_body(r, max, "the body is empty: JSON expected",
                              &body, answer)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    *j = json_loadb((const char *) body.data, body.len,
                    JSON_REJECT_DUPLICATES, &e);

    if (*j == NULL) {
        msg = ngx_pnalloc(r->pool, 80);
        if (msg == NULL) {
            *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DECLINED;
        }

        ngx_sprintf(msg, "the body is not JSON (line %d, column %d)%Z",
                    e.line, e.column);

        *answer = ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                         (const char *) msg);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* GET /v1/dep/dep_names[?dep_name=A&dep_name=B][&cursor=&limit=] */

static ngx_int_t
ngx_http_mdm_api_dep_names(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    u_char       *s, *last, *amp, *eq;
    ngx_int_t     rc;
    ngx_str_t     raw, v, none = ngx_null_string;
    ngx_uint_t    n;
    ngx_array_t  *args;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_mdm_api_dep_method(r, NGX_HTTP_GET,
                                           "dep_names takes GET");
    }

    args = ngx_http_mdm_api_name_args(r, "dep_names", &none);
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_paged(r, args, &rc) != NGX_OK) {
        return rc;
    }

    /* every dep_name= (NanoDEP's filter takes several) */
    s = r->args.data;
    last = s + r->args.len;
    n = 0;

    while (s < last) {
        amp = ngx_strlchr(s, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(s, amp, '=');

        if (eq && eq - s == 8 && ngx_strncmp(s, "dep_name", 8) == 0) {
            raw.data = eq + 1;
            raw.len = amp - raw.data;

            if (ngx_http_mdm_unescape(r->pool, &raw, &v, 1) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (!ngx_http_mdm_api_valid_name(&v)
                || ++n > NGX_HTTP_MDM_DEP_FILTER_MAX)
            {
                return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                              "dep_name is a DEP name, at "
                                              "most 100 of them");
            }

            if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        s = amp + 1;
    }

    return ngx_http_mdm_api_dep_call(r, args, NULL);
}


/*
 * GET /v1/dep/devices/NAME[?serial=&profile_status=&op_type=&assign_result=
 * &cursor=&limit=]
 * and GET /v1/dep/devices/NAME/SERIAL
 */

static ngx_int_t
ngx_http_mdm_api_dep_devices(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    ngx_int_t     rc;
    ngx_str_t     serial, v;
    ngx_uint_t    i;
    ngx_array_t  *args;

    static const char  *filters[] = { "serial", "profile_status", "op_type",
                                      "assign_result", NULL };

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_mdm_api_dep_method(r, NGX_HTTP_GET,
                                           "DEP devices take GET");
    }

    if (p->more.len) {
        serial.data = p->more.data + 1;
        serial.len = p->more.len - 1;

        if (!ngx_http_mdm_api_valid_name(&serial)) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "a serial number is 1 to 64 "
                                          "letters, digits, \".\", \"_\" or "
                                          "\"-\"");
        }

        args = ngx_http_mdm_api_name_args(r, "device", &p->name);
        if (args == NULL
            || ngx_http_mdm_push_arg(args, serial.data, serial.len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_dep_call(r, args, NULL);
    }

    args = ngx_http_mdm_api_name_args(r, "devices", &p->name);
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_paged(r, args, &rc) != NGX_OK) {
        return rc;
    }

    for (i = 0; filters[i]; i++) {
        if (ngx_http_mdm_arg(r, filters[i], &v) == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (v.len && !ngx_http_mdm_api_valid_name(&v)) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "serial, profile_status, op_type "
                                          "and assign_result are words of "
                                          "letters, digits, \".\", \"_\" or "
                                          "\"-\"");
        }

        if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_mdm_api_dep_call(r, args, NULL);
}


char *
ngx_http_mdm_api_dep_merge_conf(ngx_conf_t *cf, ngx_http_mdm_loc_conf_t *prev,
    ngx_http_mdm_loc_conf_t *conf)
{
    ngx_conf_merge_msec_value(conf->dep_proxy_timeout,
                              prev->dep_proxy_timeout, 30000);
    ngx_conf_merge_str_value(conf->dep_pool_name, prev->dep_pool_name,
                             "default");

    if (conf->dep_proxy_timeout < 100 || conf->dep_proxy_timeout > 300000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_dep_proxy_timeout is 100ms to 5m");
        return NGX_CONF_ERROR;
    }

    if (!conf->api || ngx_strcmp(conf->dep_pool_name.data, "off") == 0) {
        return NGX_CONF_OK;
    }

#if (NGX_THREADS)
    conf->dep_thread_pool = ngx_thread_pool_add(cf, &conf->dep_pool_name);
    if (conf->dep_thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }
#else
    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "this module is built without threads: the DEP key "
                       "work runs in the worker");
#endif

    return NGX_CONF_OK;
}
