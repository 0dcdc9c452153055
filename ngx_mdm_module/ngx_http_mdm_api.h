
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_API_H_INCLUDED_
#define _NGX_HTTP_MDM_API_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the content handler of mdm_api */
ngx_int_t ngx_http_mdm_api_handler(ngx_http_request_t *r);

/* mdm_dep_proxy_timeout, mdm_dep_thread_pool (ngx_http_mdm_api_dep.c) */
char *ngx_http_mdm_api_dep_merge_conf(ngx_conf_t *cf,
    ngx_http_mdm_loc_conf_t *prev, ngx_http_mdm_loc_conf_t *conf);

/* mdm_vpp_timeout, mdm_vpp_notify (ngx_http_mdm_api_vpp*.c) */
char *ngx_http_mdm_api_vpp_merge_conf(ngx_conf_t *cf,
    ngx_http_mdm_loc_conf_t *prev, ngx_http_mdm_loc_conf_t *conf);
char *ngx_http_mdm_vpp_notify_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_MDM_API_H_INCLUDED_ */
