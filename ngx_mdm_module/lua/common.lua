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
    redis.call('HSET', dev, hash, not_after)
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
