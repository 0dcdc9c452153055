
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Declarative Device Management: the DeclarativeManagement check-in
 * (ngx_http_mdm_ddm.c), its status reports (ngx_http_mdm_ddm_status.c),
 * the admin API (ngx_http_mdm_api_ddm.c) and the asset location
 * (ngx_http_mdm_asset.c).
 */


#ifndef _NGX_HTTP_MDM_DDM_H_INCLUDED_
#define _NGX_HTTP_MDM_DDM_H_INCLUDED_


#include "ngx_http_mdm_module.h"

#include <jansson.h>


/* Apple: Identifier and ServerToken are at most 64 octets */
#define NGX_HTTP_MDM_DDM_ID_MAX        64

/* what one status report may carry: more is refused (400) */
#define NGX_HTTP_MDM_DDM_VALUES_MAX    4096
#define NGX_HTTP_MDM_DDM_ERRORS_MAX    100
#define NGX_HTTP_MDM_DDM_PATH_MAX      512
#define NGX_HTTP_MDM_DDM_DEPTH_MAX     32


/* a DeclarativeManagement check-in whose plist has been parsed */
ngx_int_t ngx_http_mdm_ddm_checkin(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx);

/*
 * Identifiers and set names: [A-Za-z0-9._@+:=~-]{1,64}, safe in a URL
 * path, a Redis key and a log line.
 */
ngx_uint_t ngx_http_mdm_ddm_valid_id(u_char *p, size_t len);

/*
 * The manifest kind of a declaration Type ("com.apple.configuration.x" ->
 * "configuration"), or NULL when its family is not one of the four.
 */
const char *ngx_http_mdm_ddm_kind(const char *type);

/* "YYYY-MM-DDTHH:MM:SSZ" of now into buf (21 bytes with the NUL) */
void ngx_http_mdm_ddm_now(u_char *buf);

/*
 * A status report (the JSON of Data) as ARGV for lua/ddm.lua: FullReport,
 * the flat values, the declaration statuses, the errors.  NULL and *reason
 * when it is malformed or too large.
 */
const char *ngx_http_mdm_ddm_status_args(ngx_http_request_t *r,
    ngx_str_t *json, ngx_array_t *args);

/* a jansson value as compact JSON in the pool */
ngx_int_t ngx_http_mdm_ddm_dump(ngx_pool_t *pool, json_t *j, size_t flags,
    ngx_str_t *out);


#endif /* _NGX_HTTP_MDM_DDM_H_INCLUDED_ */
