
/*
 * Copyright (C) ngx_mdm contributors
 *
 * GET, PUT (and DELETE) /v1/dep/config/NAME and /v1/dep/assigner/NAME:
 * where the worker calls for the name, and the profile it assigns
 */


#include "ngx_http_mdm_api_dep.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_util.h"


#define NGX_HTTP_MDM_DEP_UUID_MAX     64
#define NGX_HTTP_MDM_DEP_URL_MAX      1024


static ngx_int_t ngx_http_mdm_api_dep_url(ngx_str_t *url);


/* GET and PUT /v1/dep/config/NAME: {"base_url": "..."} */

ngx_int_t
ngx_http_mdm_api_dep_config(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    json_t       *j, *u;
    ngx_int_t     rc;
    ngx_str_t     url;
    ngx_array_t  *args;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_mdm_api_dep_simple(r, p, "config_get");
    }

    if (r->method != NGX_HTTP_PUT) {
        return ngx_http_mdm_api_dep_method(r, NGX_HTTP_GET|NGX_HTTP_PUT,
                                           "DEP config takes GET or PUT");
    }

    if (ngx_http_mdm_api_dep_json_body(r, NGX_HTTP_MDM_DEP_MAX_JSON, &j, &rc)
        != NGX_OK)
    {
        return rc;
    }

    u = json_object_get(j, "base_url");

    if (!json_is_object(j) || (u && !json_is_string(u) && !json_is_null(u))) {
        json_decref(j);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the config is {\"base_url\": "
                                      "\"https://...\"}");
    }

    /* "" or null: Apple's */
    ngx_str_null(&url);

    if (json_is_string(u) && json_string_length(u)) {
        url.len = json_string_length(u);
        url.data = ngx_pnalloc(r->pool, url.len);
        if (url.data == NULL) {
            json_decref(j);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(url.data, json_string_value(u), url.len);
    }

    json_decref(j);

    if (url.len && ngx_http_mdm_api_dep_url(&url) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "base_url is http:// or https://, a "
                                      "host, an optional :port and path; no "
                                      "query, user or spaces");
    }

    args = ngx_http_mdm_api_name_args(r, "config_put", &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, url.data, url.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_dep_call(r, args, NULL);
}


/*
 * http(s)://HOST[:PORT][/PATH], the worker appends Apple's paths to it:
 * trailing slashes are dropped.  HOST is a name, an IPv4 or [IPv6].
 */

static ngx_int_t
ngx_http_mdm_api_dep_url(ngx_str_t *url)
{
    u_char      *s, *last, c;
    ngx_int_t    port;
    ngx_uint_t   n;

    if (url->len > NGX_HTTP_MDM_DEP_URL_MAX) {
        return NGX_DECLINED;
    }

    s = url->data;
    last = s + url->len;

    if (url->len > 8 && ngx_strncasecmp(s, (u_char *) "https://", 8) == 0) {
        s += 8;

    } else if (url->len > 7
               && ngx_strncasecmp(s, (u_char *) "http://", 7) == 0)
    {
        s += 7;

    } else {
        return NGX_DECLINED;
    }

    if (*s == '[') {
        for (s++, n = 0; s < last && *s != ']'; s++, n++) {
            c = *s;
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                  || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
            {
                return NGX_DECLINED;
            }
        }

        if (s == last || n == 0) {
            return NGX_DECLINED;
        }

        s++;

    } else {
        for (n = 0; s < last && *s != ':' && *s != '/'; s++, n++) {
            c = *s;
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                  || (c >= 'A' && c <= 'Z') || c == '.' || c == '-'))
            {
                return NGX_DECLINED;
            }
        }

        if (n == 0) {
            return NGX_DECLINED;
        }
    }

    if (s < last && *s == ':') {
        for (s++, n = 0, port = 0; s < last && *s != '/'; s++, n++) {
            if (*s < '0' || *s > '9' || n >= 5) {
                return NGX_DECLINED;
            }

            port = port * 10 + (*s - '0');
        }

        if (n == 0 || port == 0 || port > 65535) {
            return NGX_DECLINED;
        }
    }

    for ( /* void */ ; s < last; s++) {
        c = *s;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || c == '/' || c == '.' || c == '-'
              || c == '_' || c == '~' || c == '%'))
        {
            return NGX_DECLINED;
        }
    }

    while (url->len && url->data[url->len - 1] == '/') {
        url->len--;
    }

    return NGX_OK;
}


/*
 * GET, PUT and DELETE /v1/dep/assigner/NAME: NanoDEP takes the profile as
 * ?profile_uuid=; {"profile_uuid": "..."} in the body works too
 */

ngx_int_t
ngx_http_mdm_api_dep_assigner(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p)
{
    json_t       *j;
    ngx_int_t     rc;
    ngx_str_t     uuid, body;
    const char   *s;
    ngx_array_t  *args;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_mdm_api_dep_simple(r, p, "assigner_get");
    }

    if (r->method == NGX_HTTP_DELETE) {
        return ngx_http_mdm_api_dep_simple(r, p, "assigner_delete");
    }

    if (r->method != NGX_HTTP_PUT) {
        return ngx_http_mdm_api_dep_method(r, NGX_HTTP_GET|NGX_HTTP_PUT,
                                           "the DEP assigner takes GET, PUT "
                                           "or DELETE");
    }

    if (ngx_http_mdm_arg(r, "profile_uuid", &uuid) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (uuid.len == 0 && ngx_http_mdm_request_body(r, &body) == NGX_OK) {
        if (ngx_http_mdm_api_dep_json_body(r, NGX_HTTP_MDM_DEP_MAX_JSON, &j,
                                           &rc)
            != NGX_OK)
        {
            return rc;
        }

        s = json_string_value(json_object_get(j, "profile_uuid"));

        if (s) {
            uuid.len = ngx_strlen(s);
            uuid.data = ngx_pnalloc(r->pool, uuid.len + 1);
            if (uuid.data == NULL) {
                json_decref(j);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(uuid.data, s, uuid.len);
        }

        json_decref(j);
    }

    if (!ngx_http_mdm_api_word(&uuid, NGX_HTTP_MDM_DEP_UUID_MAX, "-")) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the assigner needs ?profile_uuid= "
                                      "(1 to 64 letters, digits or \"-\"; "
                                      "DELETE stops assigning)");
    }

    args = ngx_http_mdm_api_name_args(r, "assigner_put", &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, uuid.data, uuid.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_dep_call(r, args, NULL);
}
