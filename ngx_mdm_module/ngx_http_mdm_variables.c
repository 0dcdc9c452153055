
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the module learnt about the device, for log_format, map and the
 * rest of the configuration.  Empty (not found) before the body is parsed.
 */


#include "ngx_http_mdm_variables.h"


static ngx_int_t ngx_http_mdm_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_mdm_vars[] = {

    { ngx_string("mdm_enrollment_id"), NULL, ngx_http_mdm_variable,
      offsetof(ngx_http_mdm_ctx_t, enrollment_id), 0, 0 },

    { ngx_string("mdm_udid"), NULL, ngx_http_mdm_variable,
      offsetof(ngx_http_mdm_ctx_t, udid), 0, 0 },

    { ngx_string("mdm_message_type"), NULL, ngx_http_mdm_variable,
      offsetof(ngx_http_mdm_ctx_t, message_type), 0, 0 },

    { ngx_string("mdm_enrollment_type"), NULL, ngx_http_mdm_variable,
      offsetof(ngx_http_mdm_ctx_t, enrollment_type), 0, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_mdm_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_mdm_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t           *s;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}
