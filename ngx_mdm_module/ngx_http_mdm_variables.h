
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_VARIABLES_H_INCLUDED_
#define _NGX_HTTP_MDM_VARIABLES_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* $mdm_enrollment_id, $mdm_udid, $mdm_message_type, $mdm_enrollment_type */
ngx_int_t ngx_http_mdm_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_MDM_VARIABLES_H_INCLUDED_ */
