-- Shared by every script: gen.sh puts it in front of each one.

-- keys of an enrollment ("<did>" or "<did>:<user>") share the {did} slot
local function mdm_key(prefix, did, suffix)
    return prefix .. '{' .. did .. '}' .. suffix
end

local function mdm_split_id(id)
    local c = string.find(id, ':', 1, true)
    if c then return string.sub(id, 1, c - 1), string.sub(id, c) end
    return id, ''
end

-- the result of one command for one enrollment
local function mdm_result_key(did, suffix, uuid)
    return mdm_key(MDM_KEY_RESULT, did, suffix) .. ':' .. uuid
end

-- an enrollment's commands: the priority lane, then the queue, both FIFO
local function mdm_queue_keys(did, suffix)
    return mdm_key(MDM_KEY_QUEUE_PRIO, did, suffix), mdm_key(MDM_KEY_QUEUE, did, suffix)
end

-- An XADD to a stream, capped at about max entries ("0": no cap): every
-- event the module writes goes through here (mdm_events_max).
local function mdm_xadd(key, max, ...)
    if max ~= '' and max ~= '0' then
        return redis.call('XADD', key, 'MAXLEN', '~', max, '*', ...)
    end
    return redis.call('XADD', key, '*', ...)
end

-- results and other per-command records live mdm_result_ttl seconds after
-- their last write ("0": forever)
local function mdm_expire(key, ttl)
    if ttl ~= '' and ttl ~= '0' then redis.call('EXPIRE', key, ttl) end
end

-- a device blocked through the API (POST /v1/enrollments/ID/block)
local function mdm_blocked(did)
    return redis.call('EXISTS', mdm_key(MDM_KEY_BLOCK, did, '')) == 1
end

-- The most queue entries one script looks at: a queue is a Redis list a
-- device cannot shorten by itself (NotNow keeps a command queued), so the
-- work of one call must not grow with it.
local MDM_SCAN_MAX = 100

-- a UUID is queued once (enqueue refuses a duplicate): LREM stops at it
local function mdm_unqueue(did, suffix, uuid)
    local p, q = mdm_queue_keys(did, suffix)
    local n = redis.call('LREM', p, 1, uuid)
    if n == 0 then n = redis.call('LREM', q, 1, uuid) end
    return n
end

-- Certificates bound to a device are fields of its device-channel
-- enrollment hash, named by their SHA-256 (64 hex digits) -> notAfter: a
-- name of 64 characters still lets Redis keep the hash as a listpack, so a
-- binding costs tens of bytes instead of a key of its own.
local function mdm_is_cert_field(f)
    return #f == 64 and not string.find(f, '[^0-9a-f]')
end

-- {sha256 = notAfter} of every certificate bound to the device
local function mdm_bindings(dev)
    local t, b = redis.call('HGETALL', dev), {}
    for i = 1, #t, 2 do
        if mdm_is_cert_field(t[i]) then b[t[i]] = t[i + 1] end
    end
    return b
end

-- the bindings earlier versions kept in a hash of their own, as its key
-- and its HGETALL
local function mdm_old_bindings(did)
    local old = mdm_key(MDM_KEY_CERTS_OLD, did, '')
    return old, redis.call('HGETALL', old)
end

-- Those move into the enrollment hash the first time they are looked for.
-- Returns whether there were any.
local function mdm_migrate_bindings(dev, did)
    local old, t = mdm_old_bindings(did)
    if #t == 0 then return false end
    redis.call('HSET', dev, unpack(t))
    redis.call('DEL', old)
    return true
end

-- The index entry of a certificate goes a day after the certificate
-- expires: an expired certificate is refused before Redis is asked, so the
-- entry has nothing left to guard.
local function mdm_bind(dev, certidx, did, hash, not_after, now_ms)
    -- cert_bound: the latest bound, which the API shows among certificates
    -- valid as long (a renewal issued within the second of the old one)
    redis.call('HSET', dev, hash, not_after, 'cert_bound', hash)
    redis.call('SET', certidx, did)
    local until_s = math.max(tonumber(not_after) or 0,
                             math.floor(tonumber(now_ms) / 1000))
    redis.call('EXPIREAT', certidx, until_s + 86400)
end

-- NanoMDM's certauth: Authenticate binds, everything else must be bound;
-- renewed certificates are kept alongside the old ones until they expire.
-- Returns nil, or why the request is refused.
local function mdm_authorize(mtype, mode, dev, certidx, did, hash, not_after,
                             now)
    if mode == 'off' then return nil end

    if mtype == 'Authenticate' then
        local owner = redis.call('GET', certidx)
        if owner and owner ~= did then
            return 'certificate is already bound to another enrollment'
        end
        return nil
    end

    if redis.call('HEXISTS', dev, hash) == 1 then return nil end

    if mdm_migrate_bindings(dev, did)
       and redis.call('HEXISTS', dev, hash) == 1 then
        return nil
    end

    if mode == 'retro' and next(mdm_bindings(dev)) == nil
       and redis.call('EXISTS', certidx) == 0 then
        mdm_bind(dev, certidx, did, hash, not_after, now)
        return nil
    end

    return 'certificate is not bound to this enrollment'
end

-- ddm
-- Declarative Device Management (ngx_http_mdm_ddm*.c, lua/ddm*.lua,
-- lua/worker_ddm.lua): an enrollment gets the union of the declaration
-- sets it is in (mdm:ddm:enrsets:{DID}USER -> sets -> declarations).

-- the enrollment's effective declarations, sorted by identifier: a list of
-- {identifier, kind, ServerToken}; with cache (a table), enrollments in
-- the same sets share one lookup (a fan-out step)
local function mdm_ddm_items(did, suffix, cache)
    local seen, list = {}, {}
    local sets = redis.call('SMEMBERS', mdm_key(MDM_KEY_DDM_ENRSETS, did,
                                                suffix))
    local ck
    if cache then
        table.sort(sets)
        ck = table.concat(sets, '\n')
        if cache[ck] then return cache[ck] end
    end
    for _, s in ipairs(sets) do
        for _, d in ipairs(redis.call('SMEMBERS', MDM_KEY_DDM_SET .. s)) do
            if not seen[d] then
                seen[d] = true
                local h = redis.call('HMGET', MDM_KEY_DDM_DECL .. d, 'kind',
                                     'token')
                if h[1] and h[2] then list[#list + 1] = {d, h[1], h[2]} end
            end
        end
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
    if cache then cache[ck] = list end
    return list
end

-- The DeclarationsToken: SHA-1 over each identifier and ServerToken, so
-- any edit, addition or removal changes it; never empty (a device stalls
-- on an empty one).  Identifiers hold no control characters (the API
-- checks), so "\n" and "\t" cannot be forged by one.
local function mdm_ddm_token(items)
    local parts = {}
    for i, it in ipairs(items) do parts[i] = it[1] .. '\t' .. it[3] end
    return redis.sha1hex('ddm1\n' .. table.concat(parts, '\n'))
end

-- "YYYY-MM-DDTHH:MM:SSZ" of a time in ms (Redis's Lua has no os.date)
local function mdm_ddm_time(ms)
    local s = math.floor(tonumber(ms) / 1000)
    local days, rem = math.floor(s / 86400), s % 86400
    -- days since 1970-01-01 to a civil date (H. Hinnant's algorithm)
    local z = days + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460)
                            + math.floor(doe / 36524)
                            - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400 + (m <= 2 and 1 or 0)
    return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', y, m, d,
                         math.floor(rem / 3600), math.floor(rem % 3600 / 60),
                         rem % 60)
end

local MDM_B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function mdm_ddm_base64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = string.byte(s, i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local q = {}
        for k = 1, 4 do
            local v = math.floor(n / 2 ^ (6 * (4 - k))) % 64
            q[k] = string.sub(MDM_B64, v + 1, v + 1)
        end
        if not b then q[3] = '=' end
        if not c then q[4] = '=' end
        out[#out + 1] = table.concat(q)
    end
    return table.concat(out)
end

-- the TokensResponse JSON (hex and a timestamp: nothing to escape)
local function mdm_ddm_tokens_json(token, now)
    return '{"SyncTokens":{"DeclarationsToken":"' .. token
        .. '","Timestamp":"' .. mdm_ddm_time(now) .. '"}}'
end

local function mdm_ddm_plist(uuid, data)
    return '<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        .. '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        .. '<plist version="1.0">\n<dict>\n'
        .. '\t<key>Command</key>\n\t<dict>\n'
        .. '\t\t<key>Data</key>\n\t\t<data>' .. mdm_ddm_base64(data)
        .. '</data>\n'
        .. '\t\t<key>RequestType</key>\n'
        .. '\t\t<string>DeclarativeManagement</string>\n\t</dict>\n'
        .. '\t<key>CommandUUID</key>\n\t<string>' .. uuid .. '</string>\n'
        .. '</dict>\n</plist>\n'
end

-- Queues the DeclarativeManagement command with the enrollment's
-- SyncTokens, and pushes (contract C1).  The command record is shared by
-- the enrollments told the same token at the same time (a fan-out to a
-- set stores one plist, not one per device): its UUID is a hash of both.
-- One per enrollment: while the last one still waits in its queue, the
-- queue entry is swapped for the new one (coalescing).  The enrollment
-- hash keeps the UUID (ddm_cmd) and the token (ddm_token); Authenticate's
-- DEL of the hash forgets both, so a re-enrolled device is told again.
-- ttl: how long the command record lives (mdm_result_ttl).
local function mdm_ddm_command(did, suffix, id, now, ttl, token)
    local enr = mdm_key(MDM_KEY_ENR, did, suffix)
    local _, queue = mdm_queue_keys(did, suffix)
    local h = string.upper(redis.sha1hex('ddm\n' .. token .. '\n' .. now))
    local uuid = string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-'
        .. string.sub(h, 13, 16) .. '-' .. string.sub(h, 17, 20) .. '-'
        .. string.sub(h, 21, 32)
    local ckey = MDM_KEY_CMD .. uuid
    if redis.call('EXISTS', ckey) == 0 then
        redis.call('HSET', ckey, 'plist',
                   mdm_ddm_plist(uuid, mdm_ddm_tokens_json(token, now)),
                   'request_type', 'DeclarativeManagement',
                   'created_at', now, 'priority', '0')
        mdm_expire(ckey, ttl)
    end
    redis.call('SADD', ckey .. ':targets', id)
    mdm_expire(ckey .. ':targets', ttl)
    local pending = redis.call('HGET', enr, 'ddm_cmd')
    local pos = pending and redis.call('LPOS', queue, pending,
                                       'MAXLEN', MDM_SCAN_MAX)
    if pending == uuid and pos then
        -- queued already (the same token, the same millisecond)
    elseif pos then
        redis.call('LSET', queue, pos, uuid)
        redis.call('SREM', MDM_KEY_CMD .. pending .. ':targets', id)
    else
        redis.call('RPUSH', queue, uuid)
    end
    redis.call('HSET', enr, 'ddm_cmd', uuid, 'ddm_token', token)
    if redis.call('SADD', MDM_KEY_PUSH_PENDING, id) == 1 then
        redis.call('RPUSH', MDM_KEY_PUSH, id)
    end
    return uuid
end

-- After a change: the command, if the enrollment is enabled and its
-- DeclarationsToken is not the one it was last told (so a burst of
-- changes that ends where it started sends nothing).  An enrollment that
-- never had declarations is not turned to DDM by an empty set.
local function mdm_ddm_changed(did, suffix, id, now, ttl, cache)
    local enr = mdm_key(MDM_KEY_ENR, did, suffix)
    local h = redis.call('HMGET', enr, 'enabled', 'ddm_token')
    if h[1] ~= '1' then return nil end
    local items = mdm_ddm_items(did, suffix, cache)
    if not h[2] and #items == 0 then return nil end
    local token = items.token or mdm_ddm_token(items)
    if cache then items.token = token end
    if token == h[2] then return nil end
    return mdm_ddm_command(did, suffix, id, now, ttl, token)
end

-- DEP, VPP: the leader's lease (worker_dep_tick.lua, worker_vpp_tick.lua).
-- True when wid holds it, renewed for lease ms; lease "0": wid gives it up
-- if it holds it (the worker stops), false.
local function mdm_lease(key, wid, lease)
    local cur = redis.call('GET', key)
    if lease == '0' then
        if cur == wid then redis.call('DEL', key) end
        return false
    end
    if cur and cur ~= wid then return false end
    redis.call('SET', key, wid, 'PX', lease)
    return true
end

-- api
-- What the admin API's scripts (api.lua, api_dep.lua, api_vpp.lua) share.

-- {status, {"error": message}}: the C side sends it as it is
local function mdm_json_error(status, message)
    return {status, cjson.encode({error = message})}
end

-- Redis's cjson writes an empty table as {}: a list that may be empty is
-- added to the encoded object o as key, [] when empty
local function mdm_encode_with_list(o, key, list)
    if #list > 0 then
        o[key] = list
        return cjson.encode(o)
    end
    local s = cjson.encode(o)
    if s == '{}' then return '{"' .. key .. '":[]}' end
    return string.sub(s, 1, -2) .. ',"' .. key .. '":[]}'
end

-- a page's next cursor: "" when there is none (SCAN's "0")
local function mdm_next_cursor(c)
    if c == nil or c == '0' then return '' end
    return c
end
