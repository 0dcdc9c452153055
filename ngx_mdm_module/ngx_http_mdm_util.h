
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_UTIL_H_INCLUDED_
#define _NGX_HTTP_MDM_UTIL_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/*
 * The module's one URL decoder: in percent-decoded into a copy from pool;
 * with plus set, "+" is a space too (query strings, form-style escaping of
 * a PEM header).  NGX_OK or NGX_ERROR (no memory).
 */
ngx_int_t ngx_http_mdm_unescape(ngx_pool_t *pool, ngx_str_t *in,
    ngx_str_t *out, ngx_uint_t plus);

/*
 * Query argument "name", percent-decoded ("type=User%20Enrollment"):
 * NGX_OK, NGX_DECLINED when absent (value set empty), NGX_ERROR.
 */
ngx_int_t ngx_http_mdm_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);

/*
 * A yes/no query value: 1 for "1", "true", "yes"; 0 for "0", "false", "no"
 * or empty; NGX_ERROR for anything else (case-insensitive).
 */
ngx_int_t ngx_http_mdm_flag(ngx_str_t *v);

/* the last call of every thread-pool task (OpenSSL's per-thread state) */
void ngx_http_mdm_thread_task_end(void);


#endif /* _NGX_HTTP_MDM_UTIL_H_INCLUDED_ */
