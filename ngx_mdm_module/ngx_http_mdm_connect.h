
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_CONNECT_H_INCLUDED_
#define _NGX_HTTP_MDM_CONNECT_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the content handlers of mdm_connect and mdm_server */
ngx_int_t ngx_http_mdm_connect_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mdm_server_handler(ngx_http_request_t *r);

/* a command report whose body has been read */
ngx_int_t ngx_http_mdm_connect_process(ngx_http_request_t *r);


#endif /* _NGX_HTTP_MDM_CONNECT_H_INCLUDED_ */
