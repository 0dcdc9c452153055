-- The admin API (see ngx_http_mdm_api.c): one operation per call.
-- ARGV[1] is the operation, ARGV[2] the time (ms); the rest depends on it.
-- Returns {http status, JSON body}.
--
-- Commands are stored once (mdm:cmd:UUID) and shared by every enrollment
-- they were enqueued for, as NanoMDM does: these keys are not hash-tagged by
-- device, so the API needs a single Redis (with replicas), not a Cluster.

local op, now = ARGV[1], ARGV[2]
local now_n = tonumber(now)

local function json_error(status, message)
    return {status, cjson.encode({error = message})}
end

local function json_array(items)
    return '[' .. table.concat(items, ',') .. ']'
end

local function enr_key(id)
    local did, suffix = mdm_split_id(id)
    return mdm_key('mdm:enr:', did, suffix)
end

-- the priority lane and the queue of an enrollment
local function queue_keys(id)
    return mdm_queue_keys(mdm_split_id(id))
end

local function result_key(id, uuid)
    local did, suffix = mdm_split_id(id)
    return mdm_result_key(did, suffix, uuid)
end

local function push(id)
    redis.call('RPUSH', 'mdm:push', id)
end

-- Runs act(id) once for each distinct known enrollment among ARGV[first..]
-- (an id named twice counts once: one Acknowledged must answer it), and
-- answers {"status": {id: ...}} with 200 (all known), 207 (some) or 400
-- (none); unknown ids get {[unknown_key] = "unknown enrollment"}.
local function for_each_enrollment(first, unknown_key, act, extra)
    local status, ok, total, seen = {}, 0, 0, {}
    for i = first, #ARGV do
        local id = ARGV[i]
        if not seen[id] then
            seen[id] = true
            total = total + 1
            if redis.call('EXISTS', enr_key(id)) == 0 then
                status[id] = {[unknown_key] = 'unknown enrollment'}
            else
                status[id] = act(id)
                ok = ok + 1
            end
        end
    end
    local code = (ok == total) and 200 or ((ok > 0) and 207 or 400)
    extra.status = status
    return code, extra, ok
end

local ops = {}

-- ARGV: 3 uuid, 4 plist, 5 request type, 6 priority (0|1), 7 expires_at
-- (ms, "" for none), 8 max deliveries ("" for none), 9 no push (0|1),
-- 10.. enrollment ids
function ops.enqueue()
    local uuid, plist, rtype, priority = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
    local expires_at, max_deliveries, nopush = ARGV[7], ARGV[8], ARGV[9]
    local ckey = 'mdm:cmd:' .. uuid

    if redis.call('EXISTS', ckey) == 1 then
        return json_error(409, 'command UUID ' .. uuid .. ' already exists')
    end

    local code, result, ok = for_each_enrollment(10, 'command_error',
        function(id)
            local lane, queue = queue_keys(id)
            redis.call('RPUSH', priority == '1' and lane or queue, uuid)
            redis.call('SADD', ckey .. ':targets', id)
            if nopush == '1' then return {} end
            push(id)
            return {push_result = 'queued'}
        end,
        {command_uuid = uuid, request_type = rtype, no_push = (nopush == '1')})

    if ok > 0 then
        redis.call('HSET', ckey, 'plist', plist, 'request_type', rtype,
                   'created_at', now, 'priority', priority)
        if expires_at ~= '' then
            redis.call('HSET', ckey, 'expires_at', expires_at)
        end
        if max_deliveries ~= '' then
            redis.call('HSET', ckey, 'max_deliveries', max_deliveries)
        end
    end

    return {code, cjson.encode(result)}
end

-- ARGV: 3.. enrollment ids
function ops.push()
    local code, result = for_each_enrollment(3, 'push_error', function(id)
        push(id)
        return {push_result = 'queued'}
    end, {})
    return {code, cjson.encode(result)}
end

-- what inspection shows of an enrollment; secrets only as "has_"
local shown = {
    'type', 'parent', 'topic',
    'enabled', 'serial_number', 'os_version', 'build_version',
    'product_name', 'model', 'model_name', 'device_name', 'imei', 'meid',
    'user_id', 'user_short_name', 'user_long_name', 'enrollment_user_id',
    'awaiting_configuration', 'token_update_tally', 'authenticated_at',
    'token_updated_at', 'checked_out_at', 'last_seen', 'push_result', 'push_error', 'push_at',
    'push_apns_id'
}
local numeric = {
    token_update_tally = true, cert_not_after = true, authenticated_at = true,
    token_updated_at = true, checked_out_at = true, last_seen = true,
    push_at = true
}
local boolean = {enabled = true, awaiting_configuration = true}

-- what the enrollment's ID says (not stored: the key holds it)
local by_enrollment_id = {
    ['User Enrollment (Device)'] = true, ['User Enrollment'] = true
}

local function identity_fields(o, id, key)
    local did, suffix = mdm_split_id(id)
    o.device_id = did
    if by_enrollment_id[o.type] then o.enrollment_id = did
    elseif o.type then o.udid = did end

    if suffix ~= '' then return end

    -- the certificates bound to the device; cert_hash is the one valid
    -- longest, i.e. the newest
    local certs, newest, bound = {}, nil, mdm_bindings(key)
    if next(bound) == nil then
        -- an enrollment of an earlier version, not migrated yet
        local _, t = mdm_old_bindings(did)
        for i = 1, #t, 2 do bound[t[i]] = t[i + 1] end
    end
    for h, na in pairs(bound) do
        certs[h] = tonumber(na)
        if not newest or certs[h] > certs[newest] then newest = h end
    end
    if newest then
        o.certificates = certs
        o.cert_hash, o.cert_not_after = newest, certs[newest]
    end
end

local function enrollment_object(id, key)
    local v = redis.call('HMGET', key, unpack(shown))
    local o = {id = id}
    for i, f in ipairs(shown) do
        if v[i] then
            if numeric[f] then o[f] = tonumber(v[i])
            elseif boolean[f] then o[f] = (v[i] == '1')
            else o[f] = v[i] end
        end
    end
    local secrets = redis.call('HMGET', key, 'unlock_token', 'bootstrap_token',
                               'token')
    o.has_unlock_token = secrets[1] ~= false
    o.has_bootstrap_token = secrets[2] ~= false
    o.has_push_token = secrets[3] ~= false
    identity_fields(o, id, key)
    return o
end

-- the enrollment id a key "mdm:enr:{did}suffix" stands for
local function key_id(key)
    local did, suffix = string.match(key, '^mdm:enr:{([^}]*)}(.*)$')
    return did and (did .. suffix) or nil
end

-- ARGV: 3 cursor, 4 count, 5 type ("" any), 6 enabled ("", "1", "0"),
-- 7 last seen after (ms, "" any)
function ops.enrollments()
    local cursor, count = ARGV[3], ARGV[4]
    local want_type, want_enabled, seen_after = ARGV[5], ARGV[6], ARGV[7]

    local r = redis.call('SCAN', cursor, 'MATCH', 'mdm:enr:{*', 'COUNT', count)
    local items = {}
    for _, key in ipairs(r[2]) do
        local id = key_id(key)
        if id and redis.call('TYPE', key).ok == 'hash' then
            local f = redis.call('HMGET', key, 'type', 'enabled', 'last_seen')
            if (want_type == '' or f[1] == want_type)
               and (want_enabled == '' or f[2] == want_enabled)
               and (seen_after == ''
                    or tonumber(f[3] or '0') > tonumber(seen_after)) then
                items[#items + 1] = cjson.encode(enrollment_object(id, key))
            end
        end
    end

    local next_cursor = (r[1] == '0') and '' or r[1]
    return {200, '{"enrollments":' .. json_array(items) .. ',"cursor":'
                 .. cjson.encode(next_cursor) .. '}'}
end

-- ARGV: 3 enrollment id
function ops.enrollment()
    local id = ARGV[3]
    local key = enr_key(id)
    if redis.call('EXISTS', key) == 0 then
        return json_error(404, 'unknown enrollment')
    end
    local o = enrollment_object(id, key)
    local lane, queue = queue_keys(id)
    o.queue_length = redis.call('LLEN', lane) + redis.call('LLEN', queue)
    return {200, cjson.encode(o)}
end

-- ARGV: 3 enrollment id
function ops.queue()
    local id = ARGV[3]
    if redis.call('EXISTS', enr_key(id)) == 0 then
        return json_error(404, 'unknown enrollment')
    end
    local items = {}
    for _, uuid in ipairs(mdm_queued(mdm_split_id(id))) do
        local c = redis.call('HMGET', 'mdm:cmd:' .. uuid, 'request_type',
                             'created_at', 'expires_at', 'max_deliveries')
        local r = redis.call('HMGET', result_key(id, uuid), 'status',
                             'deliveries', 'not_now_tally', 'updated_at')
        items[#items + 1] = cjson.encode({
            command_uuid = uuid, request_type = c[1] or nil,
            created_at = tonumber(c[2] or ''),
            expires_at = tonumber(c[3] or ''),
            max_deliveries = tonumber(c[4] or ''),
            deliveries = tonumber(r[2] or '0'),
            last_status = r[1] or nil,
            not_now_tally = tonumber(r[3] or '0'),
            updated_at = tonumber(r[4] or '')
        })
    end
    return {200, '{"id":' .. cjson.encode(id) .. ',"commands":'
                 .. json_array(items) .. '}'}
end

-- ARGV: 3 enrollment id, 4 command uuid ("" for the whole queue)
function ops.dequeue()
    local id, uuid = ARGV[3], ARGV[4]
    local did, suffix = mdm_split_id(id)
    local removed = {}

    if uuid ~= '' then
        if mdm_unqueue(did, suffix, uuid) == 0 then
            return json_error(404, 'command is not queued for this enrollment')
        end
        removed[1] = uuid
    else
        removed = mdm_queued(did, suffix)
        redis.call('DEL', mdm_queue_keys(did, suffix))
    end

    local items = {}
    for _, u in ipairs(removed) do
        redis.call('HSET', result_key(id, u), 'status', 'Deleted',
                   'updated_at', now, 'completed_at', now)
        items[#items + 1] = cjson.encode(u)
    end
    return {200, '{"id":' .. cjson.encode(id) .. ',"removed":'
                 .. json_array(items) .. '}'}
end

-- ARGV: 3 command uuid
function ops.command()
    local uuid = ARGV[3]
    local ckey = 'mdm:cmd:' .. uuid
    local c = redis.call('HMGET', ckey, 'plist', 'request_type', 'created_at',
                         'expires_at', 'max_deliveries', 'priority')
    if not c[1] then
        return json_error(404, 'unknown command')
    end

    local per = {}
    for _, id in ipairs(redis.call('SMEMBERS', ckey .. ':targets')) do
        local r = redis.call('HMGET', result_key(id, uuid), 'status', 'report',
                             'updated_at', 'deliveries', 'not_now_tally',
                             'completed_at')
        per[id] = {
            status = r[1] or 'Queued', report = r[2] or nil,
            updated_at = tonumber(r[3] or ''),
            deliveries = tonumber(r[4] or '0'),
            not_now_tally = tonumber(r[5] or '0'),
            completed_at = tonumber(r[6] or '')
        }
    end

    local o = {
        command_uuid = uuid, plist = c[1], request_type = c[2],
        created_at = tonumber(c[3]), expires_at = tonumber(c[4] or ''),
        max_deliveries = tonumber(c[5] or ''), priority = (c[6] == '1')
    }
    local body = cjson.encode(o)
    -- cjson writes an empty table as {}: right for a map of enrollments
    return {200, string.sub(body, 1, -2) .. ',"enrollments":'
                 .. cjson.encode(per) .. '}'}
end

-- ARGV: 3 topic, 4 certificate PEM, 5 key PEM, 6 notAfter (unix),
-- 7 notAfter (RFC 3339), 8 force (0|1)
function ops.pushcert()
    local topic, force = ARGV[3], ARGV[8]

    -- replacing instead of renewing a push certificate gives a new topic
    -- and silently strands every enrolled device
    if force ~= '1' and redis.call('SCARD', 'mdm:topics') > 0
       and redis.call('SISMEMBER', 'mdm:topics', topic) == 0 then
        local used = redis.call('SRANDMEMBER', 'mdm:topics')
        return json_error(409, 'the certificate is for topic ' .. topic
            .. ' but enrolled devices listen on ' .. used
            .. ': renew the existing push certificate instead of creating '
            .. 'a new one, or add ?force=1 if every device will re-enroll')
    end

    redis.call('HSET', 'mdm:pushcert:' .. topic, 'cert', ARGV[4],
               'key', ARGV[5], 'not_after', ARGV[6],
               'not_after_rfc3339', ARGV[7], 'updated_at', now)
    return {200, cjson.encode({topic = topic, not_after = ARGV[7]})}
end

-- ARGV: 3 topic
function ops.pushcert_get()
    local c = redis.call('HGET', 'mdm:pushcert:' .. ARGV[3],
                         'not_after_rfc3339')
    if not c then
        return json_error(404, 'no push certificate for this topic')
    end
    return {200, cjson.encode({topic = ARGV[3], not_after = c})}
end

-- webhook delivery as mdm-worker leaves it: the backlog, what is in
-- flight, and the dead letters (newest first); ARGV: 3 how many dead
function ops.webhooks()
    local backlog = redis.call('XLEN', 'mdm:events')
    local pending = 0
    local ok, p = pcall(redis.call, 'XPENDING', 'mdm:events', 'webhooks')
    if ok and type(p) == 'table' then pending = p[1] end

    local dead = {}
    for _, e in ipairs(redis.call('XREVRANGE', 'mdm:webhooks:dead', '+', '-',
                                  'COUNT', tonumber(ARGV[3]))) do
        local o = {dead_id = e[1]}
        for i = 1, #e[2], 2 do
            if e[2][i] ~= 'body' then o[e[2][i]] = e[2][i + 1] end
        end
        dead[#dead + 1] = cjson.encode(o)
    end

    return {200, '{"backlog":' .. backlog .. ',"pending":' .. pending
                 .. ',"dead_total":' .. redis.call('XLEN', 'mdm:webhooks:dead')
                 .. ',"dead":' .. json_array(dead) .. '}'}
end

local f = ops[op]
if not f then return json_error(404, 'unknown operation') end
return f()
