-- The DDM admin API (ngx_http_mdm_api_ddm.c) and the asset location's
-- lookup (ngx_http_mdm_asset.c): one operation per call.
-- ARGV[1] is the operation, ARGV[2] the time (ms); the rest depends on it.
-- Returns {http status, shape, ...}; the C side builds the JSON (jansson):
--   "empty"   no body
--   "error"   3 the message
--   "raw"     3 a JSON document, sent as it is
--   "list"    3.. strings -> a JSON array
--   "jsons"   3.. JSON documents -> an array of them
--   "dstatus" 3.. pairs: status JSON, the declaration's ServerToken now
--   "pairs"   3.. path/value pairs -> [{"path","value"}]
--   "tokens"  3 DeclarationsToken
--   "items"   3 DeclarationsToken, then identifier/kind/ServerToken
--   "asset"   3 content type, 4 sha256, 5 size, 6 updated_at
--   "blob"    3 content type, 4 data (asset_fetch)
--   "file"    (asset_fetch: not stored, look in mdm_asset_root)
--
-- Changes that may alter enrollments' DeclarationsTokens only mark what
-- changed in mdm:ddm:dirty (score: the time of the last change, so a
-- burst settles first); mdm-worker fans out in bounded steps
-- (lua/worker_ddm.lua).  No call here walks the enrollments of a set.

local op, now = ARGV[1], ARGV[2]

-- admin data, bounded: declarations, an enrollment's sets, asset blobs
-- (count and bytes together; each is at most 16 MiB, checked in C)
local DECLS_MAX = 10000
local ENRSETS_MAX = 100
local ASSETS_MAX = 1000
local ASSETS_BYTES_MAX = 1024 * 1024 * 1024

local function err(status, message) return {status, 'error', message} end

local function list(t)
    table.sort(t)
    local r = {200, 'list'}
    for _, v in ipairs(t) do r[#r + 1] = v end
    return r
end

-- "d:ID" a declaration, "s:SET" a set, "e:ENROLLMENT" an enrollment
local function dirty(member, notify)
    if notify == '0' then return end
    redis.call('ZADD', MDM_KEY_DDM_DIRTY, now, member)
    if string.sub(member, 1, 2) == 's:' then
        -- a set changed again while the worker walks it: walk it anew
        redis.call('HDEL', MDM_KEY_DDM_SCAN, string.sub(member, 3))
    end
end

local function changed(n) if n == 1 then return {204, 'empty'} end
                          return {304, 'empty'} end

local ops = {}

-- 3 identifier, 4 kind, 5 Type, 6 ServerToken, 7 JSON, 8 notify (0|1)
function ops.decl_put()
    local ident, kind, dtype, token, json, notify =
        ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
    local key = MDM_KEY_DDM_DECL .. ident
    if redis.call('HGET', key, 'token') == token then
        return {304, 'empty'}
    end
    if redis.call('EXISTS', key) == 0
       and redis.call('SCARD', MDM_KEY_DDM_DECLS) >= DECLS_MAX then
        return err(409, 'there are already ' .. DECLS_MAX .. ' declarations:'
                        .. ' delete one first')
    end
    redis.call('HSET', key, 'kind', kind, 'type', dtype, 'token', token,
               'json', json, 'updated_at', now)
    redis.call('SADD', MDM_KEY_DDM_DECLS, ident)
    dirty('d:' .. ident, notify)
    return {204, 'empty'}
end

function ops.decl_list()
    return list(redis.call('SMEMBERS', MDM_KEY_DDM_DECLS))
end

-- 3 identifier
function ops.decl_get()
    local json = redis.call('HGET', MDM_KEY_DDM_DECL .. ARGV[3], 'json')
    if not json then return err(404, 'no such declaration') end
    return {200, 'raw', json}
end

-- 3 identifier, 4 notify: it leaves every set it was in
function ops.decl_delete()
    local ident, notify = ARGV[3], ARGV[4]
    local key = MDM_KEY_DDM_DECL .. ident
    if redis.call('EXISTS', key) == 0 then
        return err(404, 'no such declaration')
    end
    local sets = MDM_KEY_DDM_DECLSETS .. ident
    for _, s in ipairs(redis.call('SMEMBERS', sets)) do
        redis.call('SREM', MDM_KEY_DDM_SET .. s, ident)
        dirty('s:' .. s, notify)
    end
    redis.call('DEL', key, sets)
    redis.call('SREM', MDM_KEY_DDM_DECLS, ident)
    return {204, 'empty'}
end

-- 3 set, 4 identifier, 5 notify
function ops.setdecl_put()
    local set, ident, notify = ARGV[3], ARGV[4], ARGV[5]
    if redis.call('EXISTS', MDM_KEY_DDM_DECL .. ident) == 0 then
        return err(404, 'no such declaration')
    end
    local n = redis.call('SADD', MDM_KEY_DDM_SET .. set, ident)
    redis.call('SADD', MDM_KEY_DDM_DECLSETS .. ident, set)
    if n == 1 then dirty('s:' .. set, notify) end
    return changed(n)
end

function ops.setdecl_delete()
    local set, ident, notify = ARGV[3], ARGV[4], ARGV[5]
    local n = redis.call('SREM', MDM_KEY_DDM_SET .. set, ident)
    redis.call('SREM', MDM_KEY_DDM_DECLSETS .. ident, set)
    if n == 1 then dirty('s:' .. set, notify) end
    return changed(n)
end

-- 3 set
function ops.setdecl_get()
    return list(redis.call('SMEMBERS', MDM_KEY_DDM_SET .. ARGV[3]))
end

-- 3 identifier
function ops.declsets_get()
    return list(redis.call('SMEMBERS', MDM_KEY_DDM_DECLSETS .. ARGV[3]))
end

local function enrsets_key(id)
    local did, suffix = mdm_split_id(id)
    return mdm_key(MDM_KEY_DDM_ENRSETS, did, suffix)
end

-- 3 enrollment id, 4 set, 5 notify
function ops.enrset_put()
    local id, set, notify = ARGV[3], ARGV[4], ARGV[5]
    local k = enrsets_key(id)
    if redis.call('SISMEMBER', k, set) == 0
       and redis.call('SCARD', k) >= ENRSETS_MAX then
        return err(409, 'enrollment ' .. id .. ' is in ' .. ENRSETS_MAX
                        .. ' sets already: remove it from one first')
    end
    local n = redis.call('SADD', k, set)
    redis.call('SADD', MDM_KEY_DDM_SETENRS .. set, id)
    if n == 1 then dirty('e:' .. id, notify) end
    return changed(n)
end

function ops.enrset_delete()
    local id, set, notify = ARGV[3], ARGV[4], ARGV[5]
    local n = redis.call('SREM', enrsets_key(id), set)
    redis.call('SREM', MDM_KEY_DDM_SETENRS .. set, id)
    if n == 1 then dirty('e:' .. id, notify) end
    return changed(n)
end

-- 3 enrollment id
function ops.enrset_get()
    return list(redis.call('SMEMBERS', enrsets_key(ARGV[3])))
end

function ops.items_get()
    local items = mdm_ddm_items(mdm_split_id(ARGV[3]))
    local r = {200, 'items', mdm_ddm_token(items)}
    for _, it in ipairs(items) do
        r[#r + 1] = it[1]
        r[#r + 1] = it[2]
        r[#r + 1] = it[3]
    end
    return r
end

function ops.tokens_get()
    return {200, 'tokens', mdm_ddm_token(mdm_ddm_items(mdm_split_id(ARGV[3])))}
end

-- what the device reported of each declaration, and each one's ServerToken
-- now ("" when it is gone), so that stale reports show
function ops.dstatus_get()
    local did, suffix = mdm_split_id(ARGV[3])
    local t = redis.call('HGETALL', mdm_key(MDM_KEY_DDM_DSTATUS, did, suffix))
    local r = {200, 'dstatus'}
    for i = 1, #t, 2 do
        r[#r + 1] = t[i + 1]
        r[#r + 1] = redis.call('HGET', MDM_KEY_DDM_DECL .. t[i], 'token') or ''
    end
    return r
end

function ops.errors_get()
    local did, suffix = mdm_split_id(ARGV[3])
    local r = {200, 'jsons'}
    for _, e in ipairs(redis.call('LRANGE',
                                  mdm_key(MDM_KEY_DDM_ERRORS, did, suffix),
                                  0, -1)) do
        r[#r + 1] = e
    end
    return r
end

-- 3 enrollment id, 4 path prefix ("" all)
function ops.values_get()
    local did, suffix = mdm_split_id(ARGV[3])
    local prefix = ARGV[4]
    local t = redis.call('HGETALL', mdm_key(MDM_KEY_DDM_STATUS, did, suffix))
    local paths, v = {}, {}
    for i = 1, #t, 2 do
        if string.sub(t[i], 1, #prefix) == prefix then
            paths[#paths + 1] = t[i]
            v[t[i]] = t[i + 1]
        end
    end
    table.sort(paths)
    local r = {200, 'pairs'}
    for _, p in ipairs(paths) do
        r[#r + 1] = p
        r[#r + 1] = v[p]
    end
    return r
end

-- 3 name, 4 content type, 5 sha256 (hex), 6 data
function ops.asset_put()
    local key = MDM_KEY_DDM_ASSET .. ARGV[3]
    local n = redis.call('EXISTS', key)
    local sizes = redis.call('HGETALL', MDM_KEY_DDM_ASSETS)
    local count, total = #sizes / 2, #ARGV[6]
    for i = 2, #sizes, 2 do
        if sizes[i - 1] ~= ARGV[3] then total = total + tonumber(sizes[i]) end
    end
    if n == 0 and count >= ASSETS_MAX then
        return err(409, 'there are already ' .. ASSETS_MAX .. ' assets:'
                        .. ' delete one first')
    end
    if total > ASSETS_BYTES_MAX then
        return err(409, 'the assets would take ' .. total .. ' bytes, more '
                        .. 'than ' .. ASSETS_BYTES_MAX .. ': delete some first')
    end
    redis.call('HSET', MDM_KEY_DDM_ASSETS, ARGV[3], #ARGV[6])
    redis.call('HSET', key, 'content_type', ARGV[4], 'sha256', ARGV[5],
               'size', #ARGV[6], 'data', ARGV[6], 'updated_at', now)
    if n == 1 then return {200, 'empty'} end
    return {201, 'empty'}
end

-- 3 name
function ops.asset_get()
    local h = redis.call('HMGET', MDM_KEY_DDM_ASSET .. ARGV[3],
                         'content_type', 'sha256', 'size', 'updated_at')
    if not h[1] then return err(404, 'no such asset') end
    return {200, 'asset', h[1], h[2], h[3], h[4]}
end

function ops.asset_delete()
    redis.call('HDEL', MDM_KEY_DDM_ASSETS, ARGV[3])
    if redis.call('DEL', MDM_KEY_DDM_ASSET .. ARGV[3]) == 0 then
        return err(404, 'no such asset')
    end
    return {204, 'empty'}
end

-- A device's fetch: 3 certificate sha256, 4 its notAfter, 5 name.  The
-- certificate must be bound to an enabled, unblocked enrollment (the
-- binding check-ins make under mdm_cert_auth), or 403: never 401.
function ops.asset_fetch()
    local hash, not_after, name = ARGV[3], ARGV[4], ARGV[5]
    local did = redis.call('GET', MDM_KEY_CERTIDX .. hash)
    if not did then return err(403, 'certificate of no enrollment') end
    local dev = mdm_key(MDM_KEY_ENR, did, '')
    if mdm_blocked(did) then return err(403, 'device ' .. did .. ' blocked') end
    local h = redis.call('HMGET', dev, 'enabled', hash)
    if h[1] ~= '1' or not h[2] then
        return err(403, 'device ' .. did .. ' is not enrolled with this '
                        .. 'certificate')
    end
    local a = redis.call('HMGET', MDM_KEY_DDM_ASSET .. name, 'content_type',
                         'data')
    if not a[1] then return {200, 'file', did} end
    return {200, 'blob', a[1], a[2], did}
end

local f = ops[op]
if not f then return err(404, 'unknown operation') end
return f()
