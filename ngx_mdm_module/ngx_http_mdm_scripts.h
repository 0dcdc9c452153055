
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_SCRIPTS_H_INCLUDED_
#define _NGX_HTTP_MDM_SCRIPTS_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the server-side scripts, from lua/<name>.lua */
#define NGX_HTTP_MDM_SCRIPT_CHECKIN  0
#define NGX_HTTP_MDM_SCRIPT_CONNECT  1
#define NGX_HTTP_MDM_SCRIPT_API      2
#define NGX_HTTP_MDM_SCRIPT_ENROLL   3
#define NGX_HTTP_MDM_SCRIPT_SCEP     4
#define NGX_HTTP_MDM_SCRIPT_METRICS  5
#define NGX_HTTP_MDM_SCRIPT_API_DEP  6
#define NGX_HTTP_MDM_SCRIPT_DDM      7
#define NGX_HTTP_MDM_SCRIPT_DDM_API  8
#define NGX_HTTP_MDM_SCRIPT_API_VPP  9
#define NGX_HTTP_MDM_SCRIPT_N        10


typedef struct {
    const char    *name;
    const char    *source;
    size_t         len;
    u_char         sha1[41];   /* what EVALSHA takes, computed locally */
} ngx_http_mdm_script_t;


ngx_int_t ngx_http_mdm_scripts_init(ngx_log_t *log);
ngx_http_mdm_script_t *ngx_http_mdm_script(ngx_uint_t n);


#endif /* _NGX_HTTP_MDM_SCRIPTS_H_INCLUDED_ */
