
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Helpers of the named families of the admin API (see
 * ngx_http_mdm_api_util.h): the DEP and VPP files call these rather than
 * keeping copies of their own.
 */


#include "ngx_http_mdm_api_util.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_util.h"


ngx_uint_t
ngx_http_mdm_api_word(ngx_str_t *s, size_t max, const char *extra)
{
    u_char      c;
    ngx_uint_t  i;

    if (s->len == 0 || s->len > max) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }

        /* strchr() finds the terminating NUL: a NUL byte is refused too */
        if (c == '\0' || strchr(extra, c) == NULL) {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_mdm_api_split(ngx_str_t *rest, const char **subs, ngx_str_t *sub,
    ngx_str_t *name, ngx_str_t *more)
{
    u_char      *s, *last, *slash;
    ngx_uint_t   i;

    ngx_str_null(sub);
    ngx_str_null(name);
    ngx_str_null(more);

    s = rest->data;
    last = s + rest->len;

    if (rest->len == 0) {
        return NGX_DECLINED;
    }

    slash = ngx_strlchr(s, last, '/');
    sub->data = s;
    sub->len = (slash ? slash : last) - s;

    for (i = 0; subs[i]; i++) {
        if (sub->len == ngx_strlen(subs[i])
            && ngx_strncmp(sub->data, subs[i], sub->len) == 0)
        {
            break;
        }
    }

    if (subs[i] == NULL) {
        return NGX_DECLINED;
    }

    if (slash == NULL) {
        return NGX_OK;
    }

    s = slash + 1;
    slash = ngx_strlchr(s, last, '/');

    name->data = s;
    name->len = (slash ? slash : last) - s;

    if (slash) {
        more->data = slash;
        more->len = last - slash;
    }

    return NGX_OK;
}


ngx_array_t *
ngx_http_mdm_api_name_args(ngx_http_request_t *r, const char *op,
    ngx_str_t *name)
{
    ngx_array_t  *args;

    args = ngx_http_mdm_api_args(r, op);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, name->data, name->len) != NGX_OK)
    {
        return NULL;
    }

    return args;
}


void
ngx_http_mdm_api_script_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_http_finalize_request(r, ngx_http_mdm_api_script_reply(r, reply,
                                                               err));
}


ngx_int_t
ngx_http_mdm_api_name_call(ngx_http_request_t *r, ngx_uint_t script,
    const char *op, ngx_str_t *name)
{
    ngx_array_t  *args;

    args = ngx_http_mdm_api_name_args(r, op, name);
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_eval(r, script, 0, args,
                                 ngx_http_mdm_api_script_done);
}


/*
 * NGX_OK: the page query is good and in args; otherwise the request is
 * answered (a 400, or 500 without memory) and answer is what to return
 */

ngx_int_t
ngx_http_mdm_api_paged(ngx_http_request_t *r, ngx_array_t *args,
    ngx_int_t *answer)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_api_page(r, args, 0, NGX_HTTP_MDM_API_PAGE);

    if (rc == NGX_ERROR) {
        *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    if (rc == NGX_DECLINED) {
        *answer = ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                         "cursor is one a previous page "
                                         "answered, limit 1 to 1000");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* empty: the 400's message when there is no body */

ngx_int_t
ngx_http_mdm_api_body(ngx_http_request_t *r, size_t max, const char *empty,
    ngx_str_t *body, ngx_int_t *answer)
{
    if (ngx_http_mdm_request_body(r, body) != NGX_OK) {
        *answer = ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, empty);
        return NGX_DECLINED;
    }

    if (body->len > max) {
        *answer = ngx_http_mdm_api_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "the body is too large for this "
                                         "endpoint");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


u_char *
ngx_http_mdm_api_dump(ngx_http_request_t *r, json_t *j, size_t *len)
{
    char    *s;
    u_char  *p;

    s = json_dumps(j, JSON_COMPACT|JSON_PRESERVE_ORDER);
    json_decref(j);

    if (s == NULL) {
        return NULL;
    }

    *len = ngx_strlen(s);
    p = ngx_pnalloc(r->pool, *len + 1);
    if (p != NULL) {
        ngx_memcpy(p, s, *len + 1);
    }

    free(s);

    return p;
}
