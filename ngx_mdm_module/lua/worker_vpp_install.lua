-- mdm-worker, VPP: an install or remove (V3).  ARGV: 1 op, 2 install id,
-- 3 now (ms), 4 location name, then what the op takes.  The install's
-- hashes live 30 days after the last write (EXPIRE refreshed here).
--   load:  -> {action, adam_id, pricing_param, state, {serials}}: the
--          serials still to associate (or disassociate); state becomes
--          "associating"
--   queue: 5.. serials: RemoveApplication queued to their enrollments
--   batch: 5 action, 6.. triples serial, errorNumber ("" = done), error:
--          Apple's outcome of one batch; an associated serial with an
--          enrollment gets the command queued, in this same script
--   done:  5 events MAXLEN, 6 job id: the install's state, its event
local op, iid, now, name = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ik = MDM_KEY_VPP_INSTALL .. iid
local dk = ik .. ':dev'
local TTL = 30 * 86400
local p = MDM_KEY_VPP .. name .. ':'

local function touch()
    redis.call('EXPIRE', ik, TTL)
    redis.call('EXPIRE', dk, TTL)
end

local function dev(serial)
    local v = redis.call('HGET', dk, serial)
    local ok, d = pcall(cjson.decode, v or '')
    if ok and type(d) == 'table' then return d end
    return {state = 'pending'}
end

local function put(serial, d)
    redis.call('HSET', dk, serial, cjson.encode(d))
end

-- as lua/api.lua's enqueue (RPUSH, targets, one push per enrollment, C1)
local function queue(eid, uuid)
    if type(eid) ~= 'string' or eid == '' then return 'no_enrollment' end
    local did, sfx = mdm_split_id(eid)
    if redis.call('EXISTS', mdm_key(MDM_KEY_ENR, did, sfx)) == 0 then
        return 'no_enrollment'
    end
    local ck = MDM_KEY_CMD .. uuid
    if redis.call('EXISTS', ck) == 0 then return 'gone' end
    local _, q = mdm_queue_keys(did, sfx)
    redis.call('RPUSH', q, uuid)
    redis.call('SADD', ck .. ':targets', eid)
    local ttl = redis.call('TTL', ck)
    if ttl > 0 then redis.call('EXPIRE', ck .. ':targets', ttl) end
    if redis.call('SADD', MDM_KEY_PUSH_PENDING, eid) == 1 then
        redis.call('RPUSH', MDM_KEY_PUSH, eid)
    end
    return 'queued'
end

-- a device the job has still to associate (or, for a remove, whose queued
-- RemoveApplication has not been disassociated yet)
local waiting = {pending = true, no_enrollment = true}

local function unfinished(d, remove)
    return waiting[d.state] or (remove and d.state == 'queued' and not d.done)
end

if op == 'load' then
    local h = redis.call('HMGET', ik, 'action', 'adam_id', 'pricing_param',
                         'state', 'name')
    if not h[2] then return {'', '', '', 'gone', {}} end
    if h[5] and h[5] ~= name then return {'', '', '', 'gone', {}} end
    local out = {}
    if h[4] ~= 'done' and h[4] ~= 'failed' then
        local all = redis.call('HGETALL', dk)
        for i = 1, #all, 2 do
            local ok, d = pcall(cjson.decode, all[i + 1])
            if ok and type(d) == 'table' and unfinished(d, h[1] == 'remove')
            then
                out[#out + 1] = all[i]
            end
        end
        redis.call('HSET', ik, 'state', 'associating')
        touch()
    end
    return {h[1] or 'install', h[2], h[3] or 'STDQ', h[4] or '', out}
end

if op == 'queue' then
    local uuid = redis.call('HGET', ik, 'command_uuid') or ''
    for i = 5, #ARGV do
        local d = dev(ARGV[i])
        if waiting[d.state] and d.enrollment_id then
            local r = queue(d.enrollment_id, uuid)
            if r == 'queued' then
                d.state = 'queued'
                redis.call('HINCRBY', ik, 'queued', 1)
            end
            put(ARGV[i], d)
        end
    end
    touch()
    return 1
end

if op == 'batch' then
    local remove = ARGV[5] == 'remove'
    local uuid = redis.call('HGET', ik, 'command_uuid') or ''
    local adam = redis.call('HGET', ik, 'adam_id') or ''
    for i = 6, #ARGV, 3 do
        local s, num, err = ARGV[i], ARGV[i + 1], ARGV[i + 2]
        local d = dev(s)
        if unfinished(d, remove) then
            d.done = remove or nil
            if num ~= '' then
                d.state, d.error, d.error_number = 'failed', err, tonumber(num)
                redis.call('HINCRBY', ik, 'failed', 1)
            elseif remove then
                redis.call('SREM', p .. 'asg:' .. adam, s)
                redis.call('SREM', p .. 'sasg:' .. s, adam)
                if d.state ~= 'queued' then d.state = 'disassociated' end
                redis.call('HINCRBY', ik, 'associated', 1)
            else
                redis.call('SADD', p .. 'asg:' .. adam, s)
                redis.call('SADD', p .. 'sasg:' .. s, adam)
                redis.call('SADD', p .. 'adams', adam)
                redis.call('SADD', p .. 'serials', s)
                redis.call('HINCRBY', ik, 'associated', 1)
                local r = queue(d.enrollment_id, uuid)
                if r == 'queued' then
                    d.state = 'queued'
                    redis.call('HINCRBY', ik, 'queued', 1)
                elseif r == 'gone' then
                    d.state, d.error = 'associated', 'the command is gone'
                else
                    d.state = 'associated'
                end
            end
            put(s, d)
        end
    end
    touch()
    return 1
end

if op == 'done' then
    local h = redis.call('HMGET', ik, 'total', 'associated', 'queued', 'failed')
    local total, failed = tonumber(h[1] or '0') or 0, tonumber(h[4] or '0') or 0
    local state = (total > 0 and failed >= total) and 'failed' or 'done'
    redis.call('HSET', ik, 'state', state, 'done_at', now)
    touch()
    redis.call('HDEL', MDM_KEY_VPP_RUNNING, ARGV[6])
    mdm_xadd(MDM_KEY_EVENTS, ARGV[5], 'type', 'vpp.install', 'id',
             'vpp:' .. iid, 'vpp_name', name, 'install_id', iid, 'time', now,
             'state', state, 'total', h[1] or '0', 'associated', h[2] or '0',
             'queued', h[3] or '0', 'failed', h[4] or '0')
    return state
end
return redis.error_reply('unknown op')
