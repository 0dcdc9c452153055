
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The fuzz targets' side of the nginx core shim (ngx_shim.c) and the
 * request each target builds around one input.
 */


#ifndef _NGX_SHIM_H_INCLUDED_
#define _NGX_SHIM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


void ngx_shim_init(void);
void ngx_shim_time_update(void);
ngx_log_t *ngx_shim_log_get(void);


#endif /* _NGX_SHIM_H_INCLUDED_ */
