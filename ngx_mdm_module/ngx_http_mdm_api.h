
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_API_H_INCLUDED_
#define _NGX_HTTP_MDM_API_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the content handler of mdm_api */
ngx_int_t ngx_http_mdm_api_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_MDM_API_H_INCLUDED_ */
