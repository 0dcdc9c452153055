
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The module's own directive handlers (ngx_http_mdm_directives.c), named
 * by the command table in ngx_http_mdm_module.c.
 */


#ifndef _NGX_HTTP_MDM_DIRECTIVES_H_INCLUDED_
#define _NGX_HTTP_MDM_DIRECTIVES_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* mdm_checkin, mdm_connect, mdm_server: cmd->post is the content handler */
char *ngx_http_mdm_handler_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_mdm_api_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_identity_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the post handler of mdm_plist_max_nodes */
char *ngx_http_mdm_plist_max_nodes(ngx_conf_t *cf, void *post, void *data);


#endif /* _NGX_HTTP_MDM_DIRECTIVES_H_INCLUDED_ */
