
/*
 * Copyright (C) ngx_mdm contributors
 *
 * GET and PUT /v1/dep/tokens/NAME, and the store of every token (raw, or
 * from a token file): checked, kept as NanoDEP's five fields (contract D1)
 */


#include "ngx_http_mdm_api_dep.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_util.h"


#define NGX_HTTP_MDM_DEP_TOKEN_MAX    1024


static const char *ngx_http_mdm_api_dep_check_tokens(json_t *t);
static ngx_uint_t ngx_http_mdm_api_dep_rfc3339(const char *s);


static const char  *ngx_http_mdm_dep_token_fields[] = {
    "consumer_key", "consumer_secret", "access_token", "access_secret",
    "access_token_expiry", NULL
};


/* GET and PUT /v1/dep/tokens/NAME: NanoDEP's raw OAuth JSON */

ngx_int_t
ngx_http_mdm_api_dep_tokens(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    json_t      *j;
    ngx_int_t    rc;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_mdm_api_dep_simple(r, p, "tokens_get");
    }

    if (r->method != NGX_HTTP_PUT) {
        return ngx_http_mdm_api_dep_method(r, NGX_HTTP_GET|NGX_HTTP_PUT,
                                           "DEP tokens take GET or PUT");
    }

    if (ngx_http_mdm_api_dep_json_body(r, NGX_HTTP_MDM_DEP_MAX_JSON, &j, &rc)
        != NGX_OK)
    {
        return rc;
    }

    rc = ngx_http_mdm_api_dep_tokens_store(r, &p->name, j, 0);
    json_decref(j);

    return rc;
}


/*
 * Checks and stores tokens (D1: the script drops the session, lifts a stop
 * and asks for a sync).  brief: answer the consumer key and expiry only.
 * Returns NGX_DONE or what to finalize with; tokens stays the caller's.
 */

ngx_int_t
ngx_http_mdm_api_dep_tokens_store(ngx_http_request_t *r, ngx_str_t *name,
    json_t *tokens, ngx_uint_t brief)
{
    char         *s;
    u_char       *p;
    size_t        n;
    json_t       *t;
    ngx_int_t     force;
    ngx_str_t     v;
    ngx_uint_t    i;
    const char   *f;
    ngx_array_t  *args;

    f = ngx_http_mdm_api_dep_check_tokens(tokens);
    if (f) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, f);
    }

    ngx_http_mdm_arg(r, "force", &v);
    force = ngx_http_mdm_flag(&v);
    if (force == NGX_ERROR) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "force is 1, true, yes, 0, false or "
                                      "no");
    }

    /* only the five fields are kept, in one order */
    t = json_object();
    if (t == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; ngx_http_mdm_dep_token_fields[i]; i++) {
        f = ngx_http_mdm_dep_token_fields[i];
        json_object_set(t, f, json_object_get(tokens, f));
    }

    p = ngx_http_mdm_api_dump(r, t, &n);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args = ngx_http_mdm_api_name_args(r, "tokens_put", name);
    if (args == NULL || ngx_http_mdm_push_arg(args, p, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < 2; i++) {
        /* the strings live as long as the tokens, the caller's */
        s = (char *) json_string_value(json_object_get(tokens,
                                     i ? "access_token_expiry"
                                       : "consumer_key"));
        v.len = ngx_strlen(s);
        v.data = ngx_pnalloc(r->pool, v.len);
        if (v.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(v.data, s, v.len);

        if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (force ? "1" : "0"), 1)
        != NGX_OK
        || ngx_http_mdm_push_arg(args, (u_char *) (brief ? "brief" : "full"),
                                 brief ? 5 : 4) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_dep_call(r, args, NULL);
}


/*
 * The five string fields, each printable ASCII (they go into an OAuth
 * header), the expiry RFC 3339.  NULL, or why they are refused.
 */

static const char *
ngx_http_mdm_api_dep_check_tokens(json_t *t)
{
    size_t       n, k;
    ngx_uint_t   i;
    const char  *s;
    json_t      *v;

    static const char  *errs[] = {
        "the tokens have no consumer_key string",
        "the tokens have no consumer_secret string",
        "the tokens have no access_token string",
        "the tokens have no access_secret string",
        "the tokens have no access_token_expiry string"
    };

    if (!json_is_object(t)) {
        return "the tokens are not a JSON object";
    }

    for (i = 0; ngx_http_mdm_dep_token_fields[i]; i++) {
        v = json_object_get(t, ngx_http_mdm_dep_token_fields[i]);
        s = json_string_value(v);
        n = s ? json_string_length(v) : 0;

        if (n == 0 || n > NGX_HTTP_MDM_DEP_TOKEN_MAX) {
            return errs[i];
        }

        for (k = 0; k < n; k++) {
            if (s[k] <= 0x20 || s[k] >= 0x7f) {
                return "a token field has a byte that is not printable "
                       "ASCII";
            }
        }
    }

    s = json_string_value(json_object_get(t, "access_token_expiry"));

    if (!ngx_http_mdm_api_dep_rfc3339(s)) {
        return "access_token_expiry is not an RFC 3339 time "
               "(2025-06-01T05:59:16Z)";
    }

    return NULL;
}


/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) */

static ngx_uint_t
ngx_http_mdm_api_dep_rfc3339(const char *s)
{
    ngx_uint_t   i;
    const char  *form = "dddd-dd-ddTdd:dd:dd";

    for (i = 0; form[i]; i++) {
        if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9')
            : (s[i] != form[i] && !(form[i] == 'T' && s[i] == 't')))
        {
            return 0;
        }
    }

    s += i;

    if (*s == '.') {
        for (s++, i = 0; *s >= '0' && *s <= '9'; s++, i++) { /* void */ }

        if (i == 0) {
            return 0;
        }
    }

    if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
        return 1;
    }

    return (*s == '+' || *s == '-')
           && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
           && s[3] == ':'
           && s[4] >= '0' && s[4] <= '9' && s[5] >= '0' && s[5] <= '9'
           && s[6] == '\0';
}
