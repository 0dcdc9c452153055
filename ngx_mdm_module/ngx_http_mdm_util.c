
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Small helpers shared by the request handlers: URL decoding and query
 * arguments.
 */


#include "ngx_http_mdm_util.h"

#include <openssl/crypto.h>
#include <openssl/err.h>


ngx_int_t
ngx_http_mdm_unescape(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out,
    ngx_uint_t plus)
{
    u_char      *dst, *src;
    ngx_uint_t   i;

    out->data = ngx_pnalloc(pool, in->len + 1);
    if (out->data == NULL) {
        out->len = 0;
        return NGX_ERROR;
    }

    for (i = 0; i < in->len; i++) {
        out->data[i] = (plus && in->data[i] == '+') ? ' ' : in->data[i];
    }

    /* in place: the decoded form is never longer */
    dst = out->data;
    src = out->data;
    ngx_unescape_uri(&dst, &src, in->len, 0);
    out->len = dst - out->data;
    out->data[out->len] = '\0';

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    ngx_str_t  raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    /* in a query string "+" is a space too */
    return ngx_http_mdm_unescape(r->pool, &raw, value, 1);
}


#define ngx_http_mdm_util_is(v, s)                                           \
    ((v)->len == sizeof(s) - 1                                               \
     && ngx_strncasecmp((v)->data, (u_char *) s, sizeof(s) - 1) == 0)


ngx_int_t
ngx_http_mdm_flag(ngx_str_t *v)
{
    if (v->len == 0
        || ngx_http_mdm_util_is(v, "0")
        || ngx_http_mdm_util_is(v, "false")
        || ngx_http_mdm_util_is(v, "no"))
    {
        return 0;
    }

    if (ngx_http_mdm_util_is(v, "1")
        || ngx_http_mdm_util_is(v, "true")
        || ngx_http_mdm_util_is(v, "yes"))
    {
        return 1;
    }

    return NGX_ERROR;
}


/*
 * OpenSSL keeps per-thread state (the error queue, the thread's random
 * generators) that only its thread-exit destructor frees; nginx's pool
 * threads may still be waiting for work when a worker exits, and that
 * state then shows as leaked (LeakSanitizer found it in CI).  It is let go
 * after each task instead; the next task builds it again, a DRBG seeding
 * that costs microseconds next to the private-key work it comes with.
 */

void
ngx_http_mdm_thread_task_end(void)
{
    ERR_clear_error();
    OPENSSL_thread_stop();
}
