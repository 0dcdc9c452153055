
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Every multi-key change runs as one server-side script, so a check-in or a
 * connect is one Redis round trip with no read-modify-write races between
 * nginx workers or hosts.
 */


#include "ngx_http_mdm_scripts.h"

#include <openssl/sha.h>

#include <ngx_http_mdm_lua.h>


static ngx_http_mdm_script_t  ngx_http_mdm_scripts[NGX_HTTP_MDM_SCRIPT_N] = {
    { "checkin", ngx_http_mdm_lua_checkin, sizeof(ngx_http_mdm_lua_checkin) - 1,
      "" },
    { "connect", ngx_http_mdm_lua_connect, sizeof(ngx_http_mdm_lua_connect) - 1,
      "" },
    { "api", ngx_http_mdm_lua_api, sizeof(ngx_http_mdm_lua_api) - 1, "" },
    { "enroll", ngx_http_mdm_lua_enroll, sizeof(ngx_http_mdm_lua_enroll) - 1,
      "" },
    { "scep", ngx_http_mdm_lua_scep, sizeof(ngx_http_mdm_lua_scep) - 1, "" },
    { "metrics", ngx_http_mdm_lua_metrics,
      sizeof(ngx_http_mdm_lua_metrics) - 1, "" },
    { "api_dep", ngx_http_mdm_lua_api_dep,
      sizeof(ngx_http_mdm_lua_api_dep) - 1, "" },
    { "ddm", ngx_http_mdm_lua_ddm, sizeof(ngx_http_mdm_lua_ddm) - 1, "" },
    { "ddm_api", ngx_http_mdm_lua_ddm_api,
      sizeof(ngx_http_mdm_lua_ddm_api) - 1, "" },
    { "api_vpp", ngx_http_mdm_lua_api_vpp,
      sizeof(ngx_http_mdm_lua_api_vpp) - 1, "" },
};


/* EVALSHA needs the script's SHA-1; computing it here saves a SCRIPT LOAD */

ngx_int_t
ngx_http_mdm_scripts_init(ngx_log_t *log)
{
    u_char                  md[SHA_DIGEST_LENGTH];
    ngx_uint_t              i;
    ngx_http_mdm_script_t  *s;

    for (i = 0; i < NGX_HTTP_MDM_SCRIPT_N; i++) {
        s = &ngx_http_mdm_scripts[i];

        if (SHA1((const u_char *) s->source, s->len, md) == NULL) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "mdm: SHA1() of script \"%s\" failed", s->name);
            return NGX_ERROR;
        }

        ngx_hex_dump(s->sha1, md, SHA_DIGEST_LENGTH);
        s->sha1[40] = '\0';
    }

    return NGX_OK;
}


ngx_http_mdm_script_t *
ngx_http_mdm_script(ngx_uint_t n)
{
    return &ngx_http_mdm_scripts[n];
}
