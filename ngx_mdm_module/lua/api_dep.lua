-- The admin API's DEP endpoints (ngx_http_mdm_api_dep*.c), contracts D1-D4:
-- one operation per call. ARGV[1] is the operation, ARGV[2] the time (ms),
-- ARGV[3] the DEP name (checked by the C side: [A-Za-z0-9._-]{1,64}); the
-- rest depends on the operation. Returns {http status, body} unless said.
--
-- The module writes a name's tokens, tokenpki, config and assigner (D1);
-- the worker owns its cursor, session, status and devices (D2), which are
-- only read here. Every listing is a page of at most 1,000 entries.

local op, now, name = ARGV[1], ARGV[2], ARGV[3]
local now_n = tonumber(now)

-- how many DEP names may exist: each is one ABM/ASM server entry, so a
-- real organization has a handful; the bound keeps dep_names one page
local MAX_NAMES = 1000

-- D4: jobs waiting for the worker at most
local PROXY_MAX = 1000

local APPLE = 'https://mdmenrollment.apple.com'

-- common.lua's (-- api)
local json_error, encode_with_list = mdm_json_error, mdm_encode_with_list

local function dkey(what)
    return MDM_KEY_DEP .. name .. ':' .. what
end

local function known()
    return redis.call('SISMEMBER', MDM_KEY_DEP_NAMES, name) == 1
end

local function unknown()
    return json_error(404, 'unknown DEP name ' .. name)
end

-- A write makes the name known (D1), within MAX_NAMES: false when full.
-- Called before anything is written, so a refusal changes nothing.
local function may_add()
    return known() or redis.call('SCARD', MDM_KEY_DEP_NAMES) < MAX_NAMES
end

local function add()
    redis.call('SADD', MDM_KEY_DEP_NAMES, name)
end

local function too_many()
    return json_error(409, 'there are already ' .. MAX_NAMES
                           .. ' DEP names; this one would be one more')
end

-- RFC 3339 ("2024-06-01T05:59:16Z", fraction and offset allowed) to ms
local function rfc3339_ms(s)
    if type(s) ~= 'string' then return nil end
    local y, mo, d, h, mi, se, rest = string.match(s,
        '^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$')
    if not y then return nil end
    rest = string.gsub(rest, '^%.%d+', '')
    local off = 0
    if rest ~= 'Z' and rest ~= 'z' then
        local sign, oh, om = string.match(rest, '^([+-])(%d%d):(%d%d)$')
        if not sign then return nil end
        off = (tonumber(oh) * 60 + tonumber(om)) * 60
        if sign == '-' then off = -off end
    end
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    -- days since 1970-01-01 of a proleptic Gregorian date
    if mo <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    local days = era * 146097 + doe - 719468
    return ((days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
             + tonumber(se)) - off) * 1000
end

local function decode(s)
    if not s then return nil end
    local ok, t = pcall(cjson.decode, s)
    if ok and type(t) == 'table' then return t end
    return nil
end

local ops = {}

-- tokenpki -----------------------------------------------------------------

-- {1, cert}, or {0} when the name has no key yet (the C side makes one)
function ops.tokenpki_get()
    local cert = redis.call('HGET', dkey('tokenpki'), 'cert')
    if cert then return {1, cert} end
    return {0}
end

-- ARGV: 4 cert PEM, 5 key PEM. The first key made is kept: of two nodes
-- that made one at the same time, both answer the stored one. {1, cert}
function ops.tokenpki_store()
    local k = dkey('tokenpki')
    local cert = redis.call('HGET', k, 'cert')
    if cert then return {1, cert} end
    if not may_add() then return too_many() end
    redis.call('HSET', k, 'cert', ARGV[4], 'key', ARGV[5], 'created_at', now)
    add()
    return {1, ARGV[4]}
end

-- {200, cert, key} for the decryption of a token file
function ops.tokenpki_key()
    local v = redis.call('HMGET', dkey('tokenpki'), 'cert', 'key')
    if not v[1] or not v[2] then
        return json_error(404, 'DEP name ' .. name .. ' has no key: GET '
                               .. '/v1/dep/tokenpki/' .. name .. ' first, '
                               .. 'upload that certificate to Apple and '
                               .. 'the token file Apple gives back here')
    end
    return {200, v[1], v[2]}
end

function ops.tokenpki_delete()
    if redis.call('DEL', dkey('tokenpki')) == 0 then
        return json_error(404, 'DEP name ' .. name .. ' has no key')
    end
    return {200, cjson.encode({dep_name = name, deleted = true})}
end

-- tokens -------------------------------------------------------------------

-- ARGV: 4 the tokens (JSON, checked by the C side), 5 their consumer key,
-- 6 their expiry, 7 force (0|1), 8 "full" (answer the tokens, as NanoDEP)
-- or "brief" (consumer key and expiry only: never the secrets). D1: the
-- worker's session is dropped, a stop lifted, and a sync asked for.
function ops.tokens_put()
    local tokens, ck, expiry = ARGV[4], ARGV[5], ARGV[6]
    local force, answer = ARGV[7], ARGV[8]
    local k = dkey('tokens')
    local cur = decode(redis.call('GET', k))
    if cur and force ~= '1' and type(cur.consumer_key) == 'string'
       and cur.consumer_key ~= ck then
        return json_error(409, 'the token is for consumer key ' .. ck
                               .. ' but DEP name ' .. name .. ' has '
                               .. cur.consumer_key .. ' (another ABM server '
                               .. 'entry?); add force=1 to replace it')
    end
    if not may_add() then return too_many() end
    redis.call('SET', k, tokens)
    redis.call('DEL', dkey('session'))
    redis.call('HDEL', dkey('status'), 'stopped', 'stop_reason')
    redis.call('SADD', MDM_KEY_DEP_SYNCNOW, name)
    add()
    if answer == 'full' then return {200, tokens} end
    return {200, cjson.encode({dep_name = name, consumer_key = ck,
                               access_token_expiry = expiry})}
end

function ops.tokens_get()
    local t = redis.call('GET', dkey('tokens'))
    if not t then
        return json_error(404, 'DEP name ' .. name .. ' has no tokens')
    end
    return {200, t}
end

-- config and assigner ------------------------------------------------------

function ops.config_get()
    if not known() then return unknown() end
    local u = redis.call('HGET', dkey('config'), 'base_url')
    return {200, cjson.encode({base_url = u or APPLE})}
end

-- ARGV: 4 base URL (checked by the C side), "" for Apple's
function ops.config_put()
    if not may_add() then return too_many() end
    local u = ARGV[4]
    if u == '' then
        redis.call('HDEL', dkey('config'), 'base_url')
    else
        redis.call('HSET', dkey('config'), 'base_url', u)
    end
    add()
    return {200, cjson.encode({base_url = (u ~= '') and u or APPLE})}
end

-- NanoDEP answers {} without a profile
function ops.assigner_get()
    if not known() then return unknown() end
    local v = redis.call('HMGET', dkey('assigner'), 'profile_uuid',
                         'updated_at')
    if not v[1] then return {200, '{}'} end
    return {200, cjson.encode({profile_uuid = v[1],
                               updated_at = tonumber(v[2] or '')})}
end

-- ARGV: 4 profile UUID (checked by the C side)
function ops.assigner_put()
    if not may_add() then return too_many() end
    redis.call('HSET', dkey('assigner'), 'profile_uuid', ARGV[4],
               'updated_at', now)
    add()
    return {200, cjson.encode({profile_uuid = ARGV[4], updated_at = now_n})}
end

-- no profile: the worker assigns nothing for this name
function ops.assigner_delete()
    if not known() then return unknown() end
    redis.call('DEL', dkey('assigner'))
    return {200, '{}'}
end

-- names, sync, status ------------------------------------------------------

-- NanoDEP's query: ARGV 3 "" (no name), 4 cursor (an offset, "" first),
-- 5 limit, 6.. dep_name filter (only those that exist). Sorted by name.
function ops.dep_names()
    local off, limit = tonumber(ARGV[4]) or 0, tonumber(ARGV[5])
    local all
    if #ARGV >= 6 then
        all = {}
        local seen = {}
        for i = 6, #ARGV do
            local n = ARGV[i]
            if not seen[n] and redis.call('SISMEMBER', MDM_KEY_DEP_NAMES, n)
                               == 1 then
                all[#all + 1] = n
            end
            seen[n] = true
        end
    else
        all = redis.call('SMEMBERS', MDM_KEY_DEP_NAMES)
    end
    table.sort(all)
    local page = {}
    for i = off + 1, math.min(off + limit, #all) do
        page[#page + 1] = all[i]
    end
    local o = {}
    if off + #page < #all then o.next_cursor = tostring(off + #page) end
    return {200, encode_with_list(o, 'dep_names', page)}
end

-- D3: the worker SPOPs the set at least every second
function ops.sync()
    if not known() then return unknown() end
    if redis.call('EXISTS', dkey('tokens')) == 0 then
        return json_error(409, 'DEP name ' .. name .. ' has no tokens yet: '
                               .. 'nothing to sync')
    end
    redis.call('SADD', MDM_KEY_DEP_SYNCNOW, name)
    return {202, cjson.encode({dep_name = name, sync = 'queued'})}
end

local STATUS_NUMBERS = {last_sync_at = true, cursor_at = true,
                        devices = true, next_sync_at = true}

-- the worker's status hash (D2), with the token's expiry and the cursor's
-- age added
function ops.status()
    if not known() then return unknown() end
    local o = {dep_name = name}
    local h = redis.call('HGETALL', dkey('status'))
    for i = 1, #h, 2 do
        local f, v = h[i], h[i + 1]
        if STATUS_NUMBERS[f] then
            o[f] = tonumber(v)
        elseif f == 'stopped' then
            o.stopped = (v == '1')
        else
            o[f] = v
        end
    end
    if o.stopped == nil then o.stopped = false end
    local t = decode(redis.call('GET', dkey('tokens')))
    o.tokens = t ~= nil
    if t then
        o.consumer_key = t.consumer_key
        o.access_token_expiry = t.access_token_expiry
        local exp = rfc3339_ms(t.access_token_expiry)
        if exp then
            o.token_expires_in_days = math.floor((exp - now_n) / 86400000)
            o.token_expired = exp <= now_n
        end
    end
    o.tokenpki = redis.call('HEXISTS', dkey('tokenpki'), 'cert') == 1
    o.cursor = redis.call('EXISTS', dkey('cursor')) == 1
    if o.cursor_at then
        o.cursor_age_seconds = math.floor((now_n - o.cursor_at) / 1000)
    end
    o.session = redis.call('EXISTS', dkey('session')) == 1
    o.sync_queued = redis.call('SISMEMBER', MDM_KEY_DEP_SYNCNOW, name) == 1
    o.base_url = redis.call('HGET', dkey('config'), 'base_url') or APPLE
    o.profile_uuid = redis.call('HGET', dkey('assigner'), 'profile_uuid')
                     or nil
    o.devices_known = redis.call('ZCARD', dkey('serials'))
    return {200, cjson.encode(o)}
end

-- devices ------------------------------------------------------------------

local DEVICE_NUMBERS = {assign_at = true, updated_at = true}

-- the device's hash (D2) as an object, or nil
local function device(serial)
    local h = redis.call('HGETALL', dkey('dev:' .. serial))
    if #h == 0 then return nil end
    local o = {}
    for i = 1, #h, 2 do
        local f, v = h[i], h[i + 1]
        o[f] = DEVICE_NUMBERS[f] and tonumber(v) or v
    end
    if o.serial_number == nil then o.serial_number = serial end
    return o
end

-- ARGV: 4 cursor (an offset, "" first), 5 limit, 6 serial, 7 profile
-- status, 8 op type, 9 assign result ("" any). Oldest change first: a device that changes
-- moves to the end, so paging meets it again rather than skipping others.
function ops.devices()
    if not known() then return unknown() end
    local off, limit = tonumber(ARGV[4]) or 0, tonumber(ARGV[5])
    local serial, pstatus, optype, aresult = ARGV[6], ARGV[7], ARGV[8],
                                             ARGV[9]
    local z = dkey('serials')
    local total = redis.call('ZCARD', z)
    local serials
    if serial ~= '' then
        serials = {}
        if off == 0 and redis.call('ZSCORE', z, serial) then
            serials[1] = serial
        end
    else
        serials = redis.call('ZRANGE', z, off, off + limit - 1)
    end
    local items = {}
    for _, s in ipairs(serials) do
        local d = device(s)
        if d and (pstatus == '' or d.profile_status == pstatus)
             and (optype == '' or d.op_type == optype)
             and (aresult == '' or d.assign_result == aresult) then
            items[#items + 1] = d
        end
    end
    local after = off + #serials
    local o = {dep_name = name, total = total,
               cursor = (serial == '' and after < total)
                        and tostring(after) or ''}
    return {200, encode_with_list(o, 'devices', items)}
end

-- ARGV: 4 serial
function ops.device()
    if not known() then return unknown() end
    local d = device(ARGV[4])
    if not d then
        return json_error(404, 'DEP name ' .. name .. ' has no device '
                               .. ARGV[4])
    end
    return {200, cjson.encode(d)}
end

-- proxy (D4) ---------------------------------------------------------------

-- ARGV: 4 the job (JSON). {202, ""} once queued.
function ops.proxy_push()
    if not known() then return unknown() end
    if redis.call('EXISTS', dkey('tokens')) == 0 then
        return json_error(409, 'DEP name ' .. name .. ' has no tokens yet')
    end
    if redis.call('LLEN', MDM_KEY_DEP_PROXY) >= PROXY_MAX then
        return json_error(503, 'the DEP proxy queue is full ('
                               .. PROXY_MAX .. ' calls wait for the worker)')
    end
    redis.call('RPUSH', MDM_KEY_DEP_PROXY, ARGV[4])
    return {202, ''}
end

-- ARGV: 3 "" (no name), 4 job id. {1, reply} once the worker answered,
-- else {0}; the reply is taken, so it is read once.
function ops.proxy_poll()
    local r = redis.call('GETDEL', MDM_KEY_DEP_PROXY_REPLY .. ARGV[4])
    if r then return {1, r} end
    return {0}
end

local f = ops[op]
if not f then return json_error(404, 'unknown operation') end
return f()
