
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the files of the admin API share: the route, the call of
 * lua/api.lua and the JSON answers.  ngx_http_mdm_api.c routes and
 * authenticates; each endpoint family lives in a file of its own.
 */


#ifndef _NGX_HTTP_MDM_API_PRIVATE_H_INCLUDED_
#define _NGX_HTTP_MDM_API_PRIVATE_H_INCLUDED_


#include "ngx_http_mdm_api.h"
#include "ngx_http_mdm_redis.h"


/* what one enqueue or push may name: the bound of one script's work */
#define NGX_HTTP_MDM_API_MAX_IDS      10000

/* the largest page of any listing, and the one given without ?limit= */
#define NGX_HTTP_MDM_API_MAX_PAGE     1000
#define NGX_HTTP_MDM_API_PAGE         100


typedef struct {
    ngx_str_t        endpoint;     /* "enqueue", "queue", ... */
    ngx_str_t        arg;          /* the path segment after it */
    ngx_str_t        arg2;         /* the one after that */
    ngx_str_t        rest;         /* all after "ENDPOINT/", unsplit */
    ngx_uint_t       deep;         /* more segments than arg and arg2 */
} ngx_http_mdm_api_route_t;


/*
 * max_args of an endpoint family that routes its own sub-paths
 * ("dep/proxy/NAME/account", "ddm/declarations/ID"): it reads rt->rest
 */
#define NGX_HTTP_MDM_API_ANY_ARGS     255


#define ngx_http_mdm_api_is(s, name)                                         \
    ((s).len == sizeof(name) - 1 && ngx_strncmp((s).data, name, (s).len) == 0)


/* ngx_http_mdm_api.c */
ngx_int_t ngx_http_mdm_api_route(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_array_t *ngx_http_mdm_api_args(ngx_http_request_t *r, const char *op);
ngx_int_t ngx_http_mdm_api_push_num(ngx_http_request_t *r, ngx_array_t *args,
    int64_t n);
ngx_int_t ngx_http_mdm_api_call(ngx_http_request_t *r, ngx_array_t *args);
ngx_int_t ngx_http_mdm_api_eval(ngx_http_request_t *r, ngx_uint_t script,
    ngx_uint_t nkeys, ngx_array_t *args, ngx_http_mdm_redis_done_pt done);
ngx_int_t ngx_http_mdm_api_unavailable(ngx_http_request_t *r,
    const char *why);
ngx_int_t ngx_http_mdm_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message);
ngx_int_t ngx_http_mdm_api_bad(ngx_http_request_t *r, ngx_uint_t status,
    const char *message);
ngx_uint_t ngx_http_mdm_api_valid_id(ngx_str_t *id);
ngx_int_t ngx_http_mdm_api_page(ngx_http_request_t *r, ngx_array_t *args,
    ngx_uint_t stream_cursor, ngx_int_t def);

/* ngx_http_mdm_api_enqueue.c: enqueue and push */
ngx_int_t ngx_http_mdm_api_enqueue(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_api_enqueue_plist(ngx_http_request_t *r,
    ngx_str_t *ids, plist_t root, ngx_str_t *xml);
ngx_int_t ngx_http_mdm_api_push(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);

/* ngx_http_mdm_api_renew.c: POST /v1/renew/IDS (enrollment profiles) */
ngx_int_t ngx_http_mdm_api_renew(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);

/* ngx_http_mdm_api_pushcert.c */
ngx_int_t ngx_http_mdm_api_pushcert_put(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_api_pushcert_get(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);

/* ngx_http_mdm_api_inspect.c: enrollments, queues, commands, webhooks */
ngx_int_t ngx_http_mdm_api_enrollments(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_queue(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_commands(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_webhooks(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);

/* ngx_http_mdm_api_scep.c: the SCEP CA's challenges and certificates */
ngx_int_t ngx_http_mdm_api_challenge(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_certificates(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);

/* ngx_http_mdm_api_dep*.c: /v1/dep/... (DEP names, tokens, proxy) */
ngx_int_t ngx_http_mdm_api_dep(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
/* ngx_http_mdm_api_commands.c: templates (contract T1) */
ngx_int_t ngx_http_mdm_api_templates(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_command_post(ngx_http_request_t *r);

/* ngx_http_mdm_api_blueprint.c: enrollment blueprints (contract B1) */
ngx_int_t ngx_http_mdm_api_blueprints(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_blueprint_put(ngx_http_request_t *r);
/* ngx_http_mdm_api_ddm.c: /v1/ddm/... (KMFDDM's API) and /v1/assets/NAME */
ngx_int_t ngx_http_mdm_api_ddm(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
ngx_int_t ngx_http_mdm_api_assets(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);

/* ngx_http_mdm_api_vpp*.c: /v1/vpp/... (Apps and Books, contracts V1-V5) */
ngx_int_t ngx_http_mdm_api_vpp(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);


#endif /* _NGX_HTTP_MDM_API_PRIVATE_H_INCLUDED_ */
