
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the files of the VPP admin API (/v1/vpp/..., Apps and Books,
 * contracts V1-V5) share.  ngx_http_mdm_api_vpp.c routes, lists and keeps
 * the config; ngx_http_mdm_api_vpp_token.c checks a content token and hands
 * it to the worker; ngx_http_mdm_api_vpp_install.c builds installs and
 * removals and shows their outcome; ngx_http_mdm_api_vpp_notify.c is
 * Apple's notifications endpoint (mdm_vpp_notify).  nginx never talks to
 * Apple: the worker does, and answers through Redis.
 */


#ifndef _NGX_HTTP_MDM_API_VPP_H_INCLUDED_
#define _NGX_HTTP_MDM_API_VPP_H_INCLUDED_


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_api_poll.h"
#include "ngx_http_mdm_api_util.h"

#include <jansson.h>


/* the bodies the endpoints take, at most (a content token is ~1 KB) */
#define NGX_HTTP_MDM_VPP_MAX_TOKEN    16384
#define NGX_HTTP_MDM_VPP_MAX_JSON     16384
#define NGX_HTTP_MDM_VPP_MAX_INSTALL  (1024 * 1024)

/* a name's length (V1), a serial's, a URL's */
#define NGX_HTTP_MDM_VPP_NAME_MAX     64
#define NGX_HTTP_MDM_VPP_URL_MAX      512


/* /v1/vpp/SUB[/NAME[/MORE]] */
typedef struct {
    ngx_str_t        sub;       /* "tokens", "install", ... */
    ngx_str_t        name;      /* the location's name; or empty */
    ngx_str_t        more;      /* after "NAME/": "" or the rest */
} ngx_http_mdm_vpp_path_t;


/* ngx_http_mdm_api_vpp.c */
ngx_int_t ngx_http_mdm_api_vpp_call(ngx_http_request_t *r, ngx_array_t *args,
    ngx_http_mdm_redis_done_pt done);
ngx_int_t ngx_http_mdm_api_vpp_json_body(ngx_http_request_t *r, size_t max,
    json_t **j, ngx_int_t *answer);
ngx_int_t ngx_http_mdm_api_vpp_job(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p, const char *op, json_t *extra,
    ngx_uint_t wait, ngx_str_t *job);
ngx_int_t ngx_http_mdm_api_vpp_waiting(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p, const char *what);
ngx_int_t ngx_http_mdm_api_vpp_ask(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p, const char *what, json_t *extra,
    const char *op);

/* ngx_http_mdm_api_vpp_token.c: PUT /v1/vpp/tokens/NAME */
ngx_int_t ngx_http_mdm_api_vpp_token_put(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);
time_t ngx_http_mdm_api_vpp_expdate(const char *s);

/* ngx_http_mdm_api_vpp_install.c */
ngx_int_t ngx_http_mdm_api_vpp_install(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p, ngx_uint_t remove);
ngx_int_t ngx_http_mdm_api_vpp_install_get(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p);


#endif /* _NGX_HTTP_MDM_API_VPP_H_INCLUDED_ */
