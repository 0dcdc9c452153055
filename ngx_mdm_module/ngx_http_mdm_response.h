
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_MDM_RESPONSE_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/*
 * Sends a complete response (an empty body when body is NULL or empty) and
 * returns what to hand to ngx_http_finalize_request().
 */
ngx_int_t ngx_http_mdm_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, ngx_str_t *body);

/* a plist answer from a tree built for it */
ngx_int_t ngx_http_mdm_send_plist(ngx_http_request_t *r, plist_t p);


#endif /* _NGX_HTTP_MDM_RESPONSE_H_INCLUDED_ */
