
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_ASSET_H_INCLUDED_
#define _NGX_HTTP_MDM_ASSET_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the content handler of mdm_asset */
ngx_int_t ngx_http_mdm_asset_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_MDM_ASSET_H_INCLUDED_ */
