
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_INVENTORY_H_INCLUDED_
#define _NGX_HTTP_MDM_INVENTORY_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* the inventory fields of an Acknowledged report, as field/value args */
ngx_int_t ngx_http_mdm_inventory_args(ngx_http_request_t *r, plist_t report,
    ngx_array_t *args);


#endif /* _NGX_HTTP_MDM_INVENTORY_H_INCLUDED_ */
