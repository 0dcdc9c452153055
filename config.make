# The Lua scripts run by Redis live in ngx_mdm_module/lua/*.lua; this rule
# turns them into C string literals so the .so carries them.

cat << END >> $NGX_MAKEFILE

$MDM_LUA_H: $MDM_SRC/lua/gen.sh $MDM_SRC/lua/*.lua $MDM_SRC/ngx_mdm_keys.h
	sh $MDM_SRC/lua/gen.sh $MDM_LUA_H $MDM_SRC/lua/common.lua $MDM_SRC/lua/*.lua

END
