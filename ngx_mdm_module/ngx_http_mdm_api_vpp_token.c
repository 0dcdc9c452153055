
/*
 * Copyright (C) ngx_mdm contributors
 *
 * PUT /v1/vpp/tokens/NAME[?force=1] with the content token file downloaded
 * from Apple Business (or School) Manager: base64 of {"token", "expDate",
 * "orgName"} (protocol-ext C4.1).  What can be checked here is (the form,
 * the expiry); what only Apple knows goes to the worker as a "token" job
 * (V2), which validates it, binds the location to this MDM (refusing one
 * bound to another unless force) and stores it; its reply is the answer.
 */


#include "ngx_http_mdm_api_vpp.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_util.h"


static const char *ngx_http_mdm_api_vpp_token_check(ngx_http_request_t *r,
    ngx_str_t *token, time_t *expires);


ngx_int_t
ngx_http_mdm_api_vpp_token_put(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p)
{
    json_t      *extra;
    time_t       expires;
    ngx_int_t    force;
    ngx_str_t    token, v;
    const char  *err;

    if (ngx_http_mdm_request_body(r, &token) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is empty: the content token "
                                      "file (.vpptoken) expected");
    }

    if (token.len > NGX_HTTP_MDM_VPP_MAX_TOKEN) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "the body is too large for a content "
                                      "token");
    }

    if (ngx_http_mdm_arg(r, "force", &v) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    force = v.len ? ngx_http_mdm_flag(&v) : 0;
    if (force != 0 && force != 1) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "force is 1 or 0");
    }

    err = ngx_http_mdm_api_vpp_token_check(r, &token, &expires);
    if (err) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    extra = json_pack("{s:s%, s:b}", "token", (char *) token.data, token.len,
                      "force", (int) force);

    if (extra == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_vpp_ask(r, p, "token", extra, "token_put");
}


/*
 * The token without surrounding white space (token is trimmed), base64 of
 * a JSON object with "token", "expDate" (not past) and "orgName": NULL, or
 * why it is refused.
 */

static const char *
ngx_http_mdm_api_vpp_token_check(ngx_http_request_t *r, ngx_str_t *token,
    time_t *expires)
{
    json_t        *j, *t, *e, *o;
    ngx_str_t      raw;
    json_error_t   jerr;

    while (token->len && isspace(token->data[token->len - 1])) {
        token->len--;
    }

    while (token->len && isspace(token->data[0])) {
        token->data++;
        token->len--;
    }

    raw.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(token->len));
    if (raw.data == NULL) {
        return "out of memory";
    }

    if (token->len == 0 || ngx_decode_base64(&raw, token) != NGX_OK) {
        return "the content token is not base64 (send the .vpptoken file "
               "as downloaded)";
    }

    j = json_loadb((const char *) raw.data, raw.len, 0, &jerr);

    t = json_object_get(j, "token");
    e = json_object_get(j, "expDate");
    o = json_object_get(j, "orgName");

    if (!json_is_object(j) || !json_is_string(t) || !json_is_string(e)
        || !json_is_string(o) || json_string_length(t) == 0)
    {
        json_decref(j);
        return "the content token is not base64 of {\"token\", \"expDate\", "
               "\"orgName\"}";
    }

    *expires = ngx_http_mdm_api_vpp_expdate(json_string_value(e));
    json_decref(j);

    if (*expires == NGX_ERROR) {
        return "the content token's expDate is not a date "
               "(2030-11-08T22:33:22+0000)";
    }

    if (*expires <= ngx_time()) {
        return "the content token has expired: download a new one";
    }

    return NULL;
}


/*
 * Apple's expDate, "2030-11-08T22:33:22+0000" ("Z", "+00:00" and a
 * fraction of seconds accepted too): unix seconds, or NGX_ERROR
 */

time_t
ngx_http_mdm_api_vpp_expdate(const char *s)
{
    int         y, mo, d, h, mi, se, n, oh, om;
    char        sign;
    time_t      t;
    const char  *p;

    n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n)
        != 6 || n != 19)
    {
        return NGX_ERROR;
    }

    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31
        || h > 23 || mi > 59 || se > 60 || h < 0 || mi < 0 || se < 0)
    {
        return NGX_ERROR;
    }

    p = s + 19;

    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) { /* void */ }
    }

    oh = 0;
    om = 0;
    sign = '+';

    if (*p == 'Z' && p[1] == '\0') {
        /* UTC */

    } else if ((*p == '+' || *p == '-') && ngx_strlen(p) == 5
               && sscanf(p + 1, "%2d%2d", &oh, &om) == 2)
    {
        sign = *p;

    } else if ((*p == '+' || *p == '-') && ngx_strlen(p) == 6 && p[3] == ':'
               && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
    {
        sign = *p;

    } else {
        return NGX_ERROR;
    }

    /* days from the civil date (proleptic Gregorian) */
    y -= (mo <= 2);
    t = (time_t) (365 * y + y / 4 - y / 100 + y / 400
                  + (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
                  - 719468);

    t = t * 86400 + h * 3600 + mi * 60 + se;
    t += (sign == '+' ? -1 : 1) * (oh * 3600 + om * 60);

    return t;
}
