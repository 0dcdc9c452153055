
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "plist": a check-in or command-report body as a device sends it.
 * The pre-scan and libplist (ngx_http_mdm_plist_parse_body), then what the
 * check-in handlers read from the dictionary: the enrollment id
 * (ngx_http_mdm_enrollment_resolve, NanoMDM's rules), its Redis key, and
 * the typed getters; an accepted tree is serialized again and re-parsed.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_enrollment.h"


static ngx_http_mdm_loc_conf_t  mlcf;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);

    /* small enough that inputs reach the limit */
    mlcf.plist_max_nodes = 2000;

    return 0;
}


static void
fuzz_plist_fields(ngx_http_request_t *r, plist_t root)
{
    size_t               i, j;
    ngx_str_t            s, key, xml;
    volatile u_char      sum;
    ngx_uint_t           b;
    const char          *reason;
    plist_t              again;
    ngx_http_mdm_ctx_t   ctx;

    static const char   *strings[] = { "MessageType", "Status",
                                       "CommandUUID", "Topic", "UDID" };
    static const char   *datas[] = { "PushMagic", "Token", "UnlockToken",
                                     "BootstrapToken" };

    ngx_memzero(&ctx, sizeof(ngx_http_mdm_ctx_t));
    sum = 0;

    reason = ngx_http_mdm_enrollment_resolve(r, root, &ctx);

    if (reason == NULL) {
        fuzz_check(ctx.enrollment_id.len > 0);
        fuzz_check(ngx_http_mdm_enrollment_valid_part(&ctx.device_id));
        fuzz_check(ctx.enrollment_id.len
                   == ctx.device_id.len + ctx.user_suffix.len);

        fuzz_check(ngx_http_mdm_enrollment_key(r->pool, "mdm:enrollment:",
                                               &ctx, 1, &key) == NGX_OK);
        fuzz_check(key.len == sizeof("mdm:enrollment:{}") - 1
                              + ctx.enrollment_id.len);
        fuzz_check(ngx_http_mdm_enrollment_key(r->pool, "mdm:q:", &ctx, 0,
                                               &key) == NGX_OK);
    }

    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (ngx_http_mdm_plist_string(root, strings[i], &s) == NGX_OK) {
            /* the handlers read the string whole: so does this */
            for (j = 0; j < s.len; j++) {
                sum += s.data[j];
            }
        }
    }

    for (i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
        (void) ngx_http_mdm_plist_data(r->pool, root, datas[i], &s);
    }

    fuzz_check(sum == sum);

    (void) ngx_http_mdm_plist_bool(root, "AwaitingConfiguration", &b);
    (void) ngx_http_mdm_plist_bool(root, "NotOnConsole", &b);

    if (ngx_http_mdm_plist_xml(r->pool, root, &xml) == NGX_OK) {
        again = ngx_http_mdm_plist_parse_body(r, &xml, &reason);
        fuzz_check((again == NULL) == (reason != NULL));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t            body;
    plist_t              root;
    const char          *reason;
    ngx_http_request_t  *r;

    r = fuzz_request(&mlcf);

    body.data = fuzz_copy(r->pool, data, size);
    body.len = size;

    reason = NULL;
    root = ngx_http_mdm_plist_parse_body(r, &body, &reason);

    /* a dictionary, or NULL and why: exactly one */
    fuzz_check((root == NULL) == (reason != NULL));

    if (root) {
        fuzz_check(plist_get_node_type(root) == PLIST_DICT);
        fuzz_plist_fields(r, root);
    }

    fuzz_request_done(r);

    return 0;
}
