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
    return mdm_key('mdm:r:', did, suffix) .. ':' .. uuid
end

-- an enrollment's commands: the priority lane, then the queue, both FIFO
local function mdm_queue_keys(did, suffix)
    return mdm_key('mdm:qp:', did, suffix), mdm_key('mdm:q:', did, suffix)
end

local function mdm_queued(did, suffix)
    local p, q = mdm_queue_keys(did, suffix)
    local t = redis.call('LRANGE', p, 0, -1)
    for _, u in ipairs(redis.call('LRANGE', q, 0, -1)) do t[#t + 1] = u end
    return t
end

local function mdm_unqueue(did, suffix, uuid)
    local p, q = mdm_queue_keys(did, suffix)
    return redis.call('LREM', p, 0, uuid) + redis.call('LREM', q, 0, uuid)
end

local function mdm_bind(certs, certidx, did, hash, not_after)
    redis.call('HSET', certs, hash, not_after)
    redis.call('SET', certidx, did)
end

-- NanoMDM's certauth: Authenticate binds, everything else must be bound;
-- renewed certificates are kept alongside the old ones until they expire.
-- Returns nil, or why the request is refused.
local function mdm_authorize(mtype, mode, certs, certidx, did, hash, not_after)
    if mode == 'off' then return nil end

    if mtype == 'Authenticate' then
        local owner = redis.call('GET', certidx)
        if owner and owner ~= did then
            return 'certificate is already bound to another enrollment'
        end
        return nil
    end

    if redis.call('HEXISTS', certs, hash) == 1 then return nil end

    if mode == 'retro' and redis.call('EXISTS', certs) == 0
       and redis.call('EXISTS', certidx) == 0 then
        mdm_bind(certs, certidx, did, hash, not_after)
        return nil
    end

    return 'certificate is not bound to this enrollment'
end

