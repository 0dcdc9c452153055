
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_REQUEST_H_INCLUDED_
#define _NGX_HTTP_MDM_REQUEST_H_INCLUDED_


#include "ngx_http_mdm_module.h"

#include <hiredis/hiredis.h>


/*
 * The first steps of every device request, in order: PUT only, then read
 * the body and call post.  Returns what the content handler returns.
 */
ngx_int_t ngx_http_mdm_device_read(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt post);

/*
 * The read body as one string (bodies over client_body_buffer_size are read
 * back from their temporary file).  NGX_DECLINED when it is empty.
 */
ngx_int_t ngx_http_mdm_request_body(ngx_http_request_t *r, ngx_str_t *body);

/*
 * With the body read: verify the device identity on the raw body, then
 * parse it, note the message's type_key ("MessageType", "Status") and
 * resolve the enrollment.  NGX_OK, or an HTTP status already logged.
 */
ngx_int_t ngx_http_mdm_device_prepare(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, const char *type_key);

#define NGX_HTTP_MDM_CHECKIN_TYPE  "application/x-apple-aspen-mdm-checkin"

/* whether the request carries the check-in Content-Type */
ngx_uint_t ngx_http_mdm_is_checkin(ngx_http_request_t *r);

/*
 * The first KEYS of every device script: enrollment, device enrollment
 * (which holds the certificate bindings), certificate index, event stream.
 */
#define NGX_HTTP_MDM_DEVICE_NKEYS  4

ngx_int_t ngx_http_mdm_device_keys(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_array_t *args);

/*
 * The ARGV every device script takes after its own leading ones: id,
 * enrollment type, device id, user suffix, cert sha256, cert notAfter,
 * mdm_cert_auth mode, now (ms), raw body, query string.
 */
ngx_int_t ngx_http_mdm_device_argv(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_array_t *args);

ngx_int_t ngx_http_mdm_push_arg(ngx_array_t *args, u_char *data, size_t len);

/*
 * A device script's reply: NGX_OK when it is {"ok", ...}; otherwise the
 * status to finalize with, logged (400 for {"err", reason}, 503 when Redis
 * failed, 500 for anything else).
 */
ngx_int_t ngx_http_mdm_device_reply(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, redisReply *reply, const char *err);

/*
 * What the handler returns after ngx_http_mdm_redis_eval() gave rc: NGX_DONE
 * while the call is in flight, or the status to answer now.
 */
ngx_int_t ngx_http_mdm_device_wait(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_int_t rc);

/* logs one line naming the reason and the enrollment, returns status */
ngx_int_t ngx_http_mdm_reject(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_int_t status, const char *reason);


#endif /* _NGX_HTTP_MDM_REQUEST_H_INCLUDED_ */
