
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "api": what the admin API reads from a request line before any
 * handler runs.  Input: the path, then "?" and the query string.
 * ngx_http_mdm_api_route() splits the path, ngx_http_mdm_api_valid_id()
 * checks each id of a comma list (as enqueue and push do),
 * ngx_http_mdm_arg() decodes the query arguments the endpoints read (the
 * module's URL decoder, ngx_http_mdm_unescape), ngx_http_mdm_flag() reads
 * a yes/no value and ngx_http_mdm_api_page() the cursor and limit.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_util.h"
#include "ngx_http_mdm_enrollment.h"


static ngx_http_mdm_loc_conf_t  mlcf;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);

    return 0;
}


static void
fuzz_api_within(ngx_str_t *part, ngx_str_t *whole)
{
    if (part->len) {
        fuzz_check(part->data >= whole->data
                   && part->data + part->len <= whole->data + whole->len);
    }
}


static void
fuzz_api_ids(ngx_str_t *list)
{
    u_char     *p, *last, *comma;
    size_t      i;
    ngx_str_t   id;
    ngx_uint_t  ok, colons;

    /* the handlers check ids only of a path that has them */
    if (list->len == 0) {
        return;
    }

    p = list->data;
    last = list->data + list->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        id.data = p;
        id.len = comma - p;

        ok = ngx_http_mdm_api_valid_id(&id);

        /* the rule it implements: DEVICE or DEVICE:USER, each part valid */
        if (ok) {
            colons = 0;
            for (i = 0; i < id.len; i++) {
                colons += (id.data[i] == ':');
            }

            fuzz_check(colons <= 1 && id.len > 0
                       && id.len <= 2 * NGX_HTTP_MDM_ID_PART_MAX + 1);
        }

        p = comma + 1;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                     i;
    ngx_str_t                  uri, args, v, raw, plus;
    ngx_int_t                  rc;
    ngx_array_t               *a;
    ngx_http_request_t        *r;
    ngx_http_mdm_api_route_t   rt;

    static const char         *names[] = { "cursor", "limit", "count",
                                           "type", "priority", "expires",
                                           "nopush", "id", "ids" };

    r = fuzz_request(&mlcf);

    if (fuzz_split(data, size, "?", &uri, &args) != NGX_OK) {
        uri.data = (u_char *) data;
        uri.len = size;
        args.len = 0;
        args.data = NULL;
    }

    r->uri.len = uri.len;
    r->uri.data = fuzz_copy(r->pool, uri.data, uri.len);
    r->args.len = args.len;
    r->args.data = fuzz_copy(r->pool, args.data, args.len);

    if (ngx_http_mdm_api_route(r, &rt) == NGX_OK) {
        /* ".../version" is named by a static string */
        if (!ngx_http_mdm_api_is(rt.endpoint, "version")) {
            fuzz_api_within(&rt.endpoint, &r->uri);
        }

        fuzz_api_within(&rt.arg, &r->uri);
        fuzz_api_within(&rt.arg2, &r->uri);
        fuzz_api_within(&rt.rest, &r->uri);

        fuzz_api_ids(&rt.arg);
        if (rt.arg2.len) {
            (void) ngx_http_mdm_api_valid_id(&rt.arg2);
        }
    }

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        rc = ngx_http_mdm_arg(r, names[i], &v);
        fuzz_check(rc == NGX_OK || rc == NGX_DECLINED);

        if (rc == NGX_OK) {
            /* NUL-terminated, never longer than what was sent */
            fuzz_check(v.data[v.len] == '\0' && v.len <= r->args.len);
            (void) ngx_http_mdm_flag(&v);
            fuzz_api_ids(&v);
        }
    }

    /* the URL decoder on the whole query, both ways */
    raw = r->args;
    fuzz_check(ngx_http_mdm_unescape(r->pool, &raw, &v, 0) == NGX_OK);
    fuzz_check(ngx_http_mdm_unescape(r->pool, &raw, &plus, 1) == NGX_OK);
    fuzz_check(v.len == plus.len && v.len <= raw.len);

    a = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    fuzz_check(a != NULL);

    rc = ngx_http_mdm_api_page(r, a, size & 1, 100);
    fuzz_check(rc == NGX_OK || rc == NGX_DECLINED);

    if (rc == NGX_OK) {
        fuzz_check(a->nelts == 2);
    }

    fuzz_request_done(r);

    return 0;
}
