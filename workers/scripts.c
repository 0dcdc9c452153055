/*
 * Copyright (C) ngx_mdm contributors
 *
 * The worker's Lua scripts (ngx_mdm_module/lua/worker_*.lua, generated
 * into mw_lua.h by gen.sh with the key names and common.lua in front).
 * They are loaded once per connection (SCRIPT LOAD) and run by SHA-1
 * (EVALSHA): the scripts are a few kilobytes each, a push runs two.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "mdm_worker.h"
#include "mw_lua.h"


static const char  *mw_lua_src[MW_LUA_N] = {
    mw_lua_take,
    mw_lua_info,
    mw_lua_result,
    mw_lua_recover,
    mw_lua_repush,
    mw_lua_procs,
    mw_lua_webhook_beat,
    mw_lua_webhook_release,
    mw_lua_webhook_claim,
    mw_lua_webhook_ack,
    mw_lua_dep_tick,
    mw_lua_dep_page,
    mw_lua_dep_assign,
    mw_lua_dep_error,
    mw_lua_dep_cursor,
    mw_lua_inventory,
    mw_lua_ddm,
    mw_lua_vpp_tick,
    mw_lua_vpp_error,
    mw_lua_vpp_token,
    mw_lua_vpp_page,
    mw_lua_vpp_install,
};


void
mw_scripts_init(mw_ctx_t *ctx)
{
    int            i, j;
    unsigned char  md[SHA_DIGEST_LENGTH];

    for (i = 0; i < MW_LUA_N; i++) {
        ctx->scripts[i].src = mw_lua_src[i];

        SHA1((const unsigned char *) mw_lua_src[i], strlen(mw_lua_src[i]), md);

        for (j = 0; j < SHA_DIGEST_LENGTH; j++) {
            snprintf(&ctx->scripts[i].sha[j * 2], 3, "%02x", md[j]);
        }
    }
}
