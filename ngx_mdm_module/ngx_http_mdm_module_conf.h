
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The module's main and location configuration (ngx_http_mdm_module_conf.c),
 * named by the module context in ngx_http_mdm_module.c.
 */


#ifndef _NGX_HTTP_MDM_MODULE_CONF_H_INCLUDED_
#define _NGX_HTTP_MDM_MODULE_CONF_H_INCLUDED_


#include "ngx_http_mdm_module.h"


void *ngx_http_mdm_create_main_conf(ngx_conf_t *cf);
char *ngx_http_mdm_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_mdm_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_mdm_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);


#endif /* _NGX_HTTP_MDM_MODULE_CONF_H_INCLUDED_ */
