
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_REQUEST_H_INCLUDED_
#define _NGX_HTTP_MDM_REQUEST_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/*
 * The first steps of every device request, in order: PUT only, then read
 * the body and call post.  Returns what the content handler returns.
 */
ngx_int_t ngx_http_mdm_device_read(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt post);

/*
 * With the body read: parse it, resolve the enrollment, verify the device
 * identity and its binding inputs.  NGX_OK, or an HTTP status already
 * logged.
 */
ngx_int_t ngx_http_mdm_device_prepare(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx);

/* logs one line naming the reason and the enrollment, returns status */
ngx_int_t ngx_http_mdm_reject(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_int_t status, const char *reason);


#endif /* _NGX_HTTP_MDM_REQUEST_H_INCLUDED_ */
