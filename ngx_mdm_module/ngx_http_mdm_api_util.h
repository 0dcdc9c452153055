
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the families of named things under /v1/ (DEP names, VPP
 * locations) share: the name check, the ARGV that starts with the name,
 * a page's query, the body's reading and the JSON dump into request
 * memory.  One copy, so both families answer a bad input alike.
 */


#ifndef _NGX_HTTP_MDM_API_UTIL_H_INCLUDED_
#define _NGX_HTTP_MDM_API_UTIL_H_INCLUDED_


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_api_poll.h"

#include <jansson.h>


/* a DEP name (D1), a VPP location (V1), a serial: [A-Za-z0-9._-]{1,64} */
#define ngx_http_mdm_api_valid_name(s)  ngx_http_mdm_api_word(s, 64, "._-")

/* 1 to max letters, digits and the bytes of extra */
ngx_uint_t ngx_http_mdm_api_word(ngx_str_t *s, size_t max, const char *extra);

/*
 * rest split as SUB[/NAME[/MORE]], SUB one of subs (NULL-terminated):
 * NGX_OK, or NGX_DECLINED.  name->data is NULL when no "/" follows SUB;
 * more, when there is one, starts at its "/".
 */
ngx_int_t ngx_http_mdm_api_split(ngx_str_t *rest, const char **subs,
    ngx_str_t *sub, ngx_str_t *name, ngx_str_t *more);

/* ARGV of a family's script: the operation, the time, the name */
ngx_array_t *ngx_http_mdm_api_name_args(ngx_http_request_t *r, const char *op,
    ngx_str_t *name);

/* a script's {status, JSON body} answered as it is (a done handler) */
void ngx_http_mdm_api_script_done(ngx_http_request_t *r, redisReply *reply,
    const char *err);

/* one call of script with the operation and the name, answered as it is */
ngx_int_t ngx_http_mdm_api_name_call(ngx_http_request_t *r, ngx_uint_t script,
    const char *op, ngx_str_t *name);

/* ?cursor=&limit= pushed to args: NGX_OK, or what to finalize with */
ngx_int_t ngx_http_mdm_api_paged(ngx_http_request_t *r, ngx_array_t *args,
    ngx_int_t *answer);

/* the body, at most max bytes: NGX_OK, or NGX_DECLINED with *answer */
ngx_int_t ngx_http_mdm_api_body(ngx_http_request_t *r, size_t max,
    const char *empty, ngx_str_t *body, ngx_int_t *answer);

/* j as compact JSON in request memory (j is released), or NULL */
u_char *ngx_http_mdm_api_dump(ngx_http_request_t *r, json_t *j, size_t *len);


#endif /* _NGX_HTTP_MDM_API_UTIL_H_INCLUDED_ */
