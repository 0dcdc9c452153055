
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_CHECKIN_H_INCLUDED_
#define _NGX_HTTP_MDM_CHECKIN_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the content handler of mdm_checkin */
ngx_int_t ngx_http_mdm_checkin_handler(ngx_http_request_t *r);

/* a check-in whose body has been read */
ngx_int_t ngx_http_mdm_checkin_process(ngx_http_request_t *r);


#endif /* _NGX_HTTP_MDM_CHECKIN_H_INCLUDED_ */
