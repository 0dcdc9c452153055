
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_ENROLLMENT_H_INCLUDED_
#define _NGX_HTTP_MDM_ENROLLMENT_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the longest device id or user part accepted */
#define NGX_HTTP_MDM_ID_PART_MAX  128


/*
 * Sets ctx->enrollment_id, enrollment_type, device_id, user_suffix and udid
 * from a check-in or connect message, exactly as NanoMDM does, so that
 * enrollments can move between the two.  Returns NULL, or why it cannot.
 */
const char *ngx_http_mdm_enrollment_resolve(ngx_http_request_t *r,
    plist_t msg, ngx_http_mdm_ctx_t *ctx);

/* "<prefix>{<device id>}<user suffix>": every key of a device shares a slot */
ngx_int_t ngx_http_mdm_enrollment_key(ngx_pool_t *pool, const char *prefix,
    ngx_http_mdm_ctx_t *ctx, ngx_uint_t with_user, ngx_str_t *key);

/* whether s is a valid id part: [A-Za-z0-9._@+-]{1,128} */
ngx_uint_t ngx_http_mdm_enrollment_valid_part(ngx_str_t *s);


#endif /* _NGX_HTTP_MDM_ENROLLMENT_H_INCLUDED_ */
