
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "ddmstatus": the JSON a device sends in a DeclarativeManagement
 * check-in's Data for the "status" endpoint, through
 * ngx_http_mdm_ddm_status_args(): jansson's parse, the flattening of
 * StatusItems into dotted paths (bounded in depth, path length and count),
 * the management.declarations part and the Errors list.  What it gives the
 * Lua script must have the shape the script reads: FullReport "0" or "1",
 * then a count and that many path/value pairs, then a count and that many
 * declaration pairs, then the errors.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_ddm.h"


static ngx_http_mdm_loc_conf_t  mlcf;
static uint64_t                 runs, taken, values;


static void
fuzz_report(void)
{
    fprintf(stderr, "ddmstatus: %llu inputs, taken %llu (%llu values)\n",
            (unsigned long long) runs, (unsigned long long) taken,
            (unsigned long long) values);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);

    atexit(fuzz_report);

    return 0;
}


/* a count argument: decimal, and the pairs it announces are there */
static ngx_uint_t
fuzz_pairs(ngx_str_t *a, ngx_uint_t n, ngx_uint_t *i, ngx_uint_t max)
{
    ngx_int_t  count;

    fuzz_check(*i < n);
    count = ngx_atoi(a[*i].data, a[*i].len);
    fuzz_check(count >= 0 && (ngx_uint_t) count <= max);
    fuzz_check(*i + 1 + 2 * (ngx_uint_t) count <= n);
    *i += 1 + 2 * (ngx_uint_t) count;

    return (ngx_uint_t) count;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t            json, *a;
    ngx_uint_t           i, n, k;
    const char          *reason;
    ngx_array_t         *args;
    ngx_http_request_t  *r;

    runs++;

    r = fuzz_request(&mlcf);

    json.len = size;
    json.data = fuzz_copy(r->pool, data, size);

    args = ngx_array_create(r->pool, 16, sizeof(ngx_str_t));
    fuzz_check(args != NULL);

    reason = ngx_http_mdm_ddm_status_args(r, &json, args);

    if (reason == NULL) {
        taken++;
        a = args->elts;
        n = args->nelts;

        fuzz_check(n >= 3);
        fuzz_check(a[0].len == 1 && (a[0].data[0] == '0'
                                     || a[0].data[0] == '1'));
        i = 1;
        k = fuzz_pairs(a, n, &i, NGX_HTTP_MDM_DDM_VALUES_MAX);
        values += k;

        /* every value has its path, within the bound */
        for (k = 2; k < i; k += 2) {
            fuzz_check(a[k].len > 0
                       && a[k].len <= NGX_HTTP_MDM_DDM_PATH_MAX);
        }

        (void) fuzz_pairs(a, n, &i, NGX_HTTP_MDM_DDM_VALUES_MAX);
        fuzz_check(i <= n);

    } else {
        fuzz_check(reason[0] != '\0');
    }

    fuzz_request_done(r);

    return 0;
}
