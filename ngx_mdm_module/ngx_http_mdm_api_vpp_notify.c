
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_vpp_notify: the URL Apple posts a location's notifications to
 * (contract V5; protocol-ext C4.2): POST .../NAME with "Authorization:
 * Bearer <notificationAuthToken>" (the worker made it, mdm:vpp:NAME:
 * notify_token) and {"notificationId", "notificationType", "notification",
 * "uId"}.  Each notification becomes one "vpp.notification" event (a
 * retried one is recognized by its id for a day), and ASSET_COUNT and
 * ASSET_MANAGEMENT make the worker sync the location now.  Apple is the
 * only client: no API key, the bearer token is the credential.
 */


#include "ngx_http_mdm_api_vpp.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_scripts.h"


#define NGX_HTTP_MDM_VPP_MAX_NOTIFY   65536
#define NGX_HTTP_MDM_VPP_ID_MAX       128


static ngx_int_t ngx_http_mdm_vpp_notify_handler(ngx_http_request_t *r);
static void ngx_http_mdm_vpp_notify_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_vpp_notify_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_vpp_notify_name(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_http_mdm_vpp_notify_bearer(ngx_http_request_t *r,
    ngx_str_t *token);


char *
ngx_http_mdm_vpp_notify_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_mdm_vpp_notify_handler) {
        return "is duplicate";
    }

    if (clcf->handler) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_http_mdm_vpp_notify_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mdm_vpp_notify_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "VPP notifications are POSTed");
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_mdm_vpp_notify_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_mdm_vpp_notify_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_vpp_notify_read(r);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_mdm_vpp_notify_read(ngx_http_request_t *r)
{
    u_char                   *n;
    json_t                   *j, *id, *type;
    ngx_str_t                 name, token, body, sid, stype;
    ngx_array_t              *args;
    json_error_t              e;
    ngx_http_mdm_loc_conf_t  *mlcf;

    if (ngx_http_mdm_vpp_notify_name(r, &name) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "a VPP notification URL ends with the "
                                      "location's name");
    }

    if (ngx_http_mdm_vpp_notify_bearer(r, &token) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_UNAUTHORIZED,
                                      "a VPP notification carries "
                                      "\"Authorization: Bearer TOKEN\"");
    }

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK
        || body.len > NGX_HTTP_MDM_VPP_MAX_NOTIFY)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "a VPP notification is a JSON object "
                                      "of at most 64 KB");
    }

    j = json_loadb((const char *) body.data, body.len, 0, &e);
    id = json_object_get(j, "notificationId");
    type = json_object_get(j, "notificationType");

    if (!json_is_object(j) || !json_is_string(id) || !json_is_string(type)
        || json_string_length(id) == 0
        || json_string_length(id) > NGX_HTTP_MDM_VPP_ID_MAX
        || json_string_length(type) == 0 || json_string_length(type) > 64)
    {
        json_decref(j);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "a VPP notification is {\"notificationId"
                                      "\", \"notificationType\", ...}");
    }

    sid.len = json_string_length(id);
    sid.data = ngx_pnalloc(r->pool, sid.len);
    stype.len = json_string_length(type);
    stype.data = ngx_pnalloc(r->pool, stype.len);

    if (sid.data == NULL || stype.data == NULL) {
        json_decref(j);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(sid.data, json_string_value(id), sid.len);
    ngx_memcpy(stype.data, json_string_value(type), stype.len);
    json_decref(j);

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    n = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    args = ngx_http_mdm_api_name_args(r, "notify", &name);

    if (n == NULL || args == NULL
        || ngx_http_mdm_push_arg(args, token.data, token.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, sid.data, sid.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, stype.data, stype.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, body.data, body.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, n, ngx_sprintf(n, "%i",
                                                      mlcf->events_max) - n)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_vpp_call(r, args, NULL);
}


/* the URI's last segment, a V1 name */

static ngx_int_t
ngx_http_mdm_vpp_notify_name(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char  *p, *last;

    last = r->uri.data + r->uri.len;

    for (p = last; p > r->uri.data && p[-1] != '/'; p--) { /* void */ }

    name->data = p;
    name->len = last - p;

    return ngx_http_mdm_api_valid_name(name)
           ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_mdm_vpp_notify_bearer(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_str_t  *v;

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    v = &r->headers_in.authorization->value;

    if (v->len <= 7 || ngx_strncasecmp(v->data, (u_char *) "Bearer ", 7)
                       != 0
        || v->len - 7 > 1024)
    {
        return NGX_DECLINED;
    }

    token->data = v->data + 7;
    token->len = v->len - 7;

    return NGX_OK;
}
