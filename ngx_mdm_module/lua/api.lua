-- The admin API (see ngx_http_mdm_api*.c): one operation per call.
-- ARGV[1] is the operation, ARGV[2] the time (ms); the rest depends on it.
-- Returns {http status, JSON body}.
--
-- Every operation's work is bounded: listings are pages (at most 1,000
-- items, the C side checks), enqueue and push name at most 10,000 ids. A
-- script holds Redis for every client while it runs, and one that outlasts
-- the module's Redis timeout costs every device request its connection.
--
-- Commands are stored once (mdm:cmd:UUID) and shared by every enrollment
-- they were enqueued for, as NanoMDM does: these keys are not hash-tagged by
-- device, so the API needs a single Redis (with replicas), not a Cluster.

local op, now = ARGV[1], ARGV[2]
local now_n = tonumber(now)

-- common.lua's (-- api)
local json_error, encode_with_list, next_cursor =
    mdm_json_error, mdm_encode_with_list, mdm_next_cursor

-- a cursor Redis refuses (the C side lets through any 20 digits, more
-- than 2^64)
local function bad_cursor()
    return json_error(400, 'cursor is one a previous page answered, '
                           .. 'limit 1 to 1000')
end

local function enr_key(id)
    local did, suffix = mdm_split_id(id)
    return mdm_key(MDM_KEY_ENR, did, suffix)
end

-- the priority lane and the queue of an enrollment
local function queue_keys(id)
    return mdm_queue_keys(mdm_split_id(id))
end

local function block_key(id)
    local did = mdm_split_id(id)
    return mdm_key(MDM_KEY_BLOCK, did, '')
end

local function result_key(id, uuid)
    local did, suffix = mdm_split_id(id)
    return mdm_result_key(did, suffix, uuid)
end

-- One pending push per enrollment (issue 9 #10, contract C1): the id goes
-- to mdm:push only if it was not already waiting there; the worker takes it
-- out of mdm:push:pending when it takes it off mdm:push.
local function push(id)
    if redis.call('SADD', MDM_KEY_PUSH_PENDING, id) == 1 then
        redis.call('RPUSH', MDM_KEY_PUSH, id)
    end
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
-- 10 how long the command and its targets are kept (s: mdm_result_ttl, or
-- until it expires if later), 11.. enrollment ids (at most 10,000)
function ops.enqueue()
    local uuid, plist, rtype, priority = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
    local expires_at, max_deliveries, nopush = ARGV[7], ARGV[8], ARGV[9]
    local ttl = ARGV[10]
    local ckey = MDM_KEY_CMD .. uuid

    if redis.call('EXISTS', ckey) == 1 then
        return json_error(409, 'command UUID ' .. uuid .. ' already exists')
    end

    local code, result, ok = for_each_enrollment(11, 'command_error',
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
        -- retention (issue 9 #6): a queue that still names the command
        -- after this finds it gone, as after DELETE /v1/queue
        -- (mdm_result_ttl 0 keeps them: EXPIRE 0 would delete them now)
        mdm_expire(ckey, ttl)
        mdm_expire(ckey .. ':targets', ttl)
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
    'push_apns_id',
    -- cmds: the blueprint queued at enrollment (B1), the inventory
    'blueprint', 'blueprint_at', 'inventory_at', 'device_capacity',
    'available_device_capacity', 'battery_level', 'filevault_enabled',
    'passcode_present', 'passcode_compliant'
}
local numeric = {
    token_update_tally = true, cert_not_after = true, authenticated_at = true,
    token_updated_at = true, checked_out_at = true, last_seen = true,
    push_at = true, blueprint_at = true, inventory_at = true,
    device_capacity = true, available_device_capacity = true,
    battery_level = true
}
local boolean = {enabled = true, awaiting_configuration = true,
    filevault_enabled = true, passcode_present = true,
    passcode_compliant = true}

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
    local last = redis.call('HGET', key, 'cert_bound')
    for h, na in pairs(bound) do
        certs[h] = tonumber(na)
        if not newest or certs[h] > certs[newest]
           or (certs[h] == certs[newest] and h == last)
        then
            newest = h
        end
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
    -- a block holds for the device and its user channels
    o.blocked_at = tonumber(redis.call('GET', block_key(id)) or '')
    return o
end

-- the enrollment id a key "mdm:enr:{did}suffix" stands for
local function key_id(key)
    local did, suffix = string.match(key, '^mdm:enr:{([^}]*)}(.*)$')
    return did and (did .. suffix) or nil
end

-- cmds: the inventory filters, ARGV 9 serial, 10 model, 11 OS version (a
-- version prefix: "17.4" is 17.4 and 17.4.x), 12 last seen before (ms);
-- "" for any
local function inventory_match(f)
    local serial, model, osv, before = ARGV[9] or '', ARGV[10] or '',
        ARGV[11] or '', ARGV[12] or ''
    return (serial == '' or f[1] == serial)
       and (model == '' or f[2] == model)
       and (osv == '' or f[3] == osv
            or (f[3] and string.sub(f[3], 1, #osv + 1) == osv .. '.'))
       and (before == '' or tonumber(f[4] or '0') < tonumber(before))
end

-- ARGV: 3 cursor, 4 count, 5 type ("" any), 6 enabled ("", "1", "0"),
-- 7 last seen after (ms, "" any), 8 newest certificate's notAfter before
-- (unix seconds, "" any), 9.. see inventory_match
function ops.enrollments()
    local cursor, count = ARGV[3], ARGV[4]
    local want_type, want_enabled, seen_after = ARGV[5], ARGV[6], ARGV[7]
    local expires_before = tonumber(ARGV[8] or '')

    local ok, r = pcall(redis.call, 'SCAN', cursor, 'MATCH', MDM_KEY_ENR .. '{*',
                        'COUNT', count)
    if not ok then return bad_cursor() end
    local items = {}
    for _, key in ipairs(r[2]) do
        local id = key_id(key)
        if id and redis.call('TYPE', key).ok == 'hash' then
            local f = redis.call('HMGET', key, 'type', 'enabled', 'last_seen')
            if (want_type == '' or f[1] == want_type)
               and (want_enabled == '' or f[2] == want_enabled)
               and (seen_after == ''
                    or tonumber(f[3] or '0') > tonumber(seen_after))
               and inventory_match(redis.call('HMGET', key, 'serial_number',
                                              'model', 'os_version',
                                              'last_seen')) then
                local o = enrollment_object(id, key)
                -- renewal candidates: devices whose identity runs out
                if not expires_before or (o.cert_not_after
                        and o.cert_not_after < expires_before) then
                    items[#items + 1] = o
                end
            end
        end
    end

    return {200, encode_with_list({cursor = next_cursor(r[1])},
                                  'enrollments', items)}
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

-- ARGV: 3 device id. The block outlives Authenticate and DELETE: the
-- device is refused 403 until unblocked (contract C5).
function ops.block()
    local id = ARGV[3]
    redis.call('SET', block_key(id), now)
    return {200, cjson.encode({
        id = id, blocked_at = now_n,
        enrolled = redis.call('EXISTS', enr_key(id)) == 1
    })}
end

-- ARGV: 3 device id
function ops.unblock()
    local id = ARGV[3]
    return {200, cjson.encode({
        id = id, blocked = false,
        was_blocked = redis.call('DEL', block_key(id)) == 1
    })}
end

-- one enrollment channel's keys and pending push; whether it existed
local function remove_channel(did, suffix)
    local id = did .. suffix
    local key = mdm_key(MDM_KEY_ENR, did, suffix)
    local existed = redis.call('EXISTS', key) == 1
    local lane, queue = mdm_queue_keys(did, suffix)
    -- UNLINK: a long queue is freed outside the script
    redis.call('UNLINK', key, lane, queue)
    -- the id stays in mdm:push (an LREM per channel would walk the whole
    -- list, up to 257 times): the worker finds no enrollment and drops it
    redis.call('SREM', MDM_KEY_PUSH_PENDING, id)
    -- its DDM set memberships and reports go with it (issue 13's retention)
    local esets = mdm_key(MDM_KEY_DDM_ENRSETS, did, suffix)
    for _, set in ipairs(redis.call('SMEMBERS', esets)) do
        redis.call('SREM', MDM_KEY_DDM_SETENRS .. set, id)
    end
    redis.call('UNLINK', esets, mdm_key(MDM_KEY_DDM_STATUS, did, suffix),
               mdm_key(MDM_KEY_DDM_DSTATUS, did, suffix),
               mdm_key(MDM_KEY_DDM_ERRORS, did, suffix))
    return existed
end

-- certificate-index entries that point at the device, of the bindings in
-- its hash and of those an earlier version kept beside it
local function unindex_certificates(did, dev)
    local old, t = mdm_old_bindings(did)
    local hashes = {}
    for h in pairs(mdm_bindings(dev)) do hashes[#hashes + 1] = h end
    for i = 1, #t, 2 do hashes[#hashes + 1] = t[i] end
    for _, h in ipairs(hashes) do
        if redis.call('GET', MDM_KEY_CERTIDX .. h) == did then
            redis.call('DEL', MDM_KEY_CERTIDX .. h)
        end
    end
    redis.call('DEL', old)
end

-- ARGV: 3 enrollment id. A device id takes its user channels with it; the
-- results expire by their TTL; a block stays (contract C5).
function ops.delete()
    local id = ARGV[3]
    local did, suffix = mdm_split_id(id)
    local users = mdm_key(MDM_KEY_USERS, did, '')
    local deleted = {}

    if suffix ~= '' then
        if remove_channel(did, suffix) then deleted[1] = id end
        redis.call('SREM', users, suffix)
    else
        local any = false
        for _, s in ipairs(redis.call('SMEMBERS', users)) do
            if remove_channel(did, s) then deleted[#deleted + 1] = did .. s end
        end
        unindex_certificates(did, enr_key(did))
        -- vppa (V3): the serial index entry, if it still names this device
        local serial = redis.call('HGET', enr_key(did), 'serial_number')
        if serial and redis.call('HGET', MDM_KEY_SERIALS, serial) == did then
            redis.call('HDEL', MDM_KEY_SERIALS, serial)
        end
        if remove_channel(did, '') then table.insert(deleted, 1, did) end
        redis.call('DEL', users, mdm_key(MDM_KEY_AUTH, did, ''))
    end

    if #deleted == 0 then
        return json_error(404, 'unknown enrollment')
    end
    return {200, cjson.encode({
        id = id, deleted = deleted,
        blocked = redis.call('EXISTS', block_key(id)) == 1
    })}
end

-- up to limit commands of an enrollment's queue from offset off: the
-- priority lane, then the queue; and the total
local function queue_page(id, off, limit)
    local lane, queue = queue_keys(id)
    local np, nq = redis.call('LLEN', lane), redis.call('LLEN', queue)
    local t = {}
    if off < np then
        t = redis.call('LRANGE', lane, off, math.min(off + limit, np) - 1)
    end
    local rest = limit - #t
    if rest > 0 and off + #t < np + nq then
        local from = math.max(off - np, 0)
        for _, u in ipairs(redis.call('LRANGE', queue, from,
                                      from + rest - 1)) do
            t[#t + 1] = u
        end
    end
    return t, np + nq
end

-- ARGV: 3 enrollment id, 4 cursor (an offset, "" for the first page),
-- 5 limit
function ops.queue()
    local id = ARGV[3]
    if redis.call('EXISTS', enr_key(id)) == 0 then
        return json_error(404, 'unknown enrollment')
    end
    local off, limit = tonumber(ARGV[4]) or 0, tonumber(ARGV[5])
    local page, total = queue_page(id, off, limit)
    local items = {}
    for _, uuid in ipairs(page) do
        local c = redis.call('HMGET', MDM_KEY_CMD .. uuid, 'request_type',
                             'created_at', 'expires_at', 'max_deliveries')
        local r = redis.call('HMGET', result_key(id, uuid), 'status',
                             'deliveries', 'not_now_tally', 'updated_at')
        items[#items + 1] = {
            command_uuid = uuid, request_type = c[1] or nil,
            created_at = tonumber(c[2] or ''),
            expires_at = tonumber(c[3] or ''),
            max_deliveries = tonumber(c[4] or ''),
            deliveries = tonumber(r[2] or '0'),
            last_status = r[1] or nil,
            not_now_tally = tonumber(r[3] or '0'),
            updated_at = tonumber(r[4] or '')
        }
    end
    local after = off + #page
    return {200, encode_with_list({
        id = id, total = total,
        cursor = (after < total) and tostring(after) or ''
    }, 'commands', items)}
end

-- ARGV: 3 enrollment id, 4 command uuid ("" for the whole queue), 5 how
-- long results are kept (s), 6 at most how many commands go in this call
function ops.dequeue()
    local id, uuid, ttl = ARGV[3], ARGV[4], ARGV[5]
    local limit = tonumber(ARGV[6])
    local did, suffix = mdm_split_id(id)
    local removed = {}

    if uuid ~= '' then
        if mdm_unqueue(did, suffix, uuid) == 0 then
            return json_error(404, 'command is not queued for this enrollment')
        end
        removed[1] = uuid
    else
        -- the first limit commands, in queue order
        local lane, queue = mdm_queue_keys(did, suffix)
        for _, k in ipairs({lane, queue}) do
            local n = limit - #removed
            if n > 0 then
                for _, u in ipairs(redis.call('LRANGE', k, 0, n - 1)) do
                    removed[#removed + 1] = u
                end
                redis.call('LTRIM', k, n, -1)
            end
        end
    end

    for _, u in ipairs(removed) do
        local rk = result_key(id, u)
        redis.call('HSET', rk, 'status', 'Deleted',
                   'updated_at', now, 'completed_at', now)
        mdm_expire(rk, ttl)
    end
    local lane, queue = queue_keys(id)
    return {200, encode_with_list({
        id = id,
        remaining = redis.call('LLEN', lane) + redis.call('LLEN', queue)
    }, 'removed', removed)}
end

-- ARGV: 3 command uuid, 4 cursor (SSCAN's, "" for the first page),
-- 5 limit (SSCAN's COUNT: a page of a small set may hold all of it)
function ops.command()
    local uuid = ARGV[3]
    local ckey = MDM_KEY_CMD .. uuid
    local c = redis.call('HMGET', ckey, 'plist', 'request_type', 'created_at',
                         'expires_at', 'max_deliveries', 'priority')
    if not c[1] then
        return json_error(404, 'unknown command')
    end

    local tkey = ckey .. ':targets'
    local ok, page = pcall(redis.call, 'SSCAN', tkey,
                           ARGV[4] == '' and '0' or ARGV[4], 'COUNT', ARGV[5])
    if not ok then return bad_cursor() end
    local per = {}
    for _, id in ipairs(page[2]) do
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

    -- cjson writes an empty table as {}: right for a map of enrollments
    return {200, cjson.encode({
        command_uuid = uuid, plist = c[1], request_type = c[2],
        created_at = tonumber(c[3]), expires_at = tonumber(c[4] or ''),
        max_deliveries = tonumber(c[5] or ''), priority = (c[6] == '1'),
        enrollments = per, cursor = next_cursor(page[1]),
        targets_total = redis.call('SCARD', tkey)
    })}
end

-- ARGV: 3 topic, 4 certificate PEM, 5 key PEM, 6 notAfter (unix),
-- 7 notAfter (RFC 3339), 8 force (0|1)
function ops.pushcert()
    local topic, force = ARGV[3], ARGV[8]

    -- replacing instead of renewing a push certificate gives a new topic
    -- and silently strands every enrolled device
    if force ~= '1' and redis.call('SCARD', MDM_KEY_TOPICS) > 0
       and redis.call('SISMEMBER', MDM_KEY_TOPICS, topic) == 0 then
        local used = redis.call('SRANDMEMBER', MDM_KEY_TOPICS)
        return json_error(409, 'the certificate is for topic ' .. topic
            .. ' but enrolled devices listen on ' .. used
            .. ': renew the existing push certificate instead of creating '
            .. 'a new one, or add ?force=1 if every device will re-enroll')
    end

    redis.call('HSET', MDM_KEY_PUSHCERT .. topic, 'cert', ARGV[4],
               'key', ARGV[5], 'not_after', ARGV[6],
               'not_after_rfc3339', ARGV[7], 'updated_at', now)
    -- the topics of uploaded certificates are the only ones the guard
    -- trusts (contract C2): devices cannot add to them
    redis.call('SADD', MDM_KEY_TOPICS, topic)
    return {200, cjson.encode({topic = topic, not_after = ARGV[7]})}
end

-- ARGV: 3 topic
function ops.pushcert_get()
    local c = redis.call('HGET', MDM_KEY_PUSHCERT .. ARGV[3],
                         'not_after_rfc3339')
    if not c then
        return json_error(404, 'no push certificate for this topic')
    end
    return {200, cjson.encode({topic = ARGV[3], not_after = c})}
end

-- webhook delivery as mdm-worker leaves it: the backlog, what is in
-- flight, and a page of dead letters, newest first. ARGV: 3 cursor (the
-- last dead_id of the previous page, "" for the newest), 4 limit
function ops.webhooks()
    local backlog = redis.call('XLEN', MDM_KEY_EVENTS)
    local pending = 0
    local ok, p = pcall(redis.call, 'XPENDING', MDM_KEY_EVENTS, 'webhooks')
    if ok and type(p) == 'table' then pending = p[1] end

    local limit = tonumber(ARGV[4])
    local from = (ARGV[3] == '') and '+' or ('(' .. ARGV[3])
    local ok, page = pcall(redis.call, 'XREVRANGE', MDM_KEY_WEBHOOKS_DEAD,
                           from, '-', 'COUNT', limit)
    if not ok then return bad_cursor() end
    local dead = {}
    for _, e in ipairs(page) do
        local o = {dead_id = e[1]}
        for i = 1, #e[2], 2 do
            if e[2][i] ~= 'body' then o[e[2][i]] = e[2][i + 1] end
        end
        dead[#dead + 1] = o
    end

    return {200, encode_with_list({
        backlog = backlog, pending = pending,
        dead_total = redis.call('XLEN', MDM_KEY_WEBHOOKS_DEAD),
        cursor = (#dead == limit) and dead[#dead].dead_id or ''
    }, 'dead', dead)}
end

-- what mdm-worker puts in front of an event's fields in a dead letter
local dead_meta = {event_id = true, error = true}

-- ARGV: 3 how many, 4 MAXLEN of mdm:events ("" or "0": none). The oldest
-- dead letters go back to mdm:events as new events, with the fields they
-- had, and leave mdm:webhooks:dead (contract C4).
function ops.replay()
    local n, maxlen = tonumber(ARGV[3]), tonumber(ARGV[4]) or 0
    local replayed, dropped = 0, 0
    for _, e in ipairs(redis.call('XRANGE', MDM_KEY_WEBHOOKS_DEAD, '-', '+',
                                  'COUNT', n)) do
        local f, i = e[2], 1
        while i < #f and dead_meta[f[i]] do i = i + 2 end
        local args = {'XADD', MDM_KEY_EVENTS}
        if maxlen > 0 then
            args[#args + 1] = 'MAXLEN'
            args[#args + 1] = '~'
            args[#args + 1] = maxlen
        end
        args[#args + 1] = '*'
        local first = #args
        for j = i, #f do args[#args + 1] = f[j] end
        if #args > first and (#args - first) % 2 == 0 then
            redis.call(unpack(args))
            replayed = replayed + 1
        else
            -- no event in it: nothing to deliver again
            dropped = dropped + 1
        end
        redis.call('XDEL', MDM_KEY_WEBHOOKS_DEAD, e[1])
    end
    return {200, cjson.encode({
        replayed = replayed, dropped = dropped,
        remaining = redis.call('XLEN', MDM_KEY_WEBHOOKS_DEAD)
    })}
end

-- POST /v1/renew (ngx_http_mdm_api_renew.c), first call: the topic each
-- device listens on, "" for an unknown device. ARGV: 3.. device ids (at
-- most 100)
function ops.renew_topics()
    local t = {}
    for i = 3, #ARGV do
        t[#t + 1] = redis.call('HGET', enr_key(ARGV[i]), 'topic') or ''
    end
    return t
end

-- second call: one InstallProfile per device, each with its own one-time
-- SCEP challenge (contract E1), queued and pushed (C1). ARGV: 3 how long
-- commands are kept (s), 4 how long the challenges live (s), then for each
-- device: id, command UUID ("" unknown), command plist, challenge ("" with
-- a static one)
function ops.renew()
    local ttl, challenge_ttl = ARGV[3], ARGV[4]
    local status, ok, total = {}, 0, 0
    for i = 5, #ARGV, 4 do
        local id, uuid, plist, challenge =
            ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
        total = total + 1
        if uuid == '' or redis.call('EXISTS', enr_key(id)) == 0 then
            status[id] = {renew_error = 'unknown enrollment'}
        else
            local ckey = MDM_KEY_CMD .. uuid
            redis.call('HSET', ckey, 'plist', plist,
                       'request_type', 'InstallProfile', 'created_at', now,
                       'priority', '0')
            redis.call('SADD', ckey .. ':targets', id)
            mdm_expire(ckey, ttl)
            mdm_expire(ckey .. ':targets', ttl)
            local _, queue = queue_keys(id)
            redis.call('RPUSH', queue, uuid)
            if challenge ~= '' then
                redis.call('SET', MDM_KEY_SCEP_CHALLENGE .. challenge, now,
                           'EX', challenge_ttl)
                -- the certificate this challenge gets may take this
                -- device's enrollment over, even under mdm_reenroll bound
                local did = mdm_split_id(id)
                redis.call('SET', MDM_KEY_RENEW_CHALLENGE .. challenge, did,
                           'EX', challenge_ttl)
            end
            push(id)
            status[id] = {command_uuid = uuid, push_result = 'queued'}
            ok = ok + 1
        end
    end
    local code = (ok == total) and 200 or ((ok > 0) and 207 or 400)
    return {code, cjson.encode({request_type = 'InstallProfile',
                                status = status})}
end

-- POST /v1/commands ClearPasscode without unlock_token (cmds): the
-- UnlockToken (base64) the device sent in its TokenUpdate. ARGV: 3 device id
function ops.unlock_token()
    local key = enr_key(ARGV[3])
    if redis.call('EXISTS', key) == 0 then
        return json_error(404, 'unknown enrollment')
    end
    local t = redis.call('HGET', key, 'unlock_token')
    if not t then
        return json_error(409, 'the device sent no UnlockToken')
    end
    return {200, t}
end

-- Blueprints (cmds, contract B1): mdm:bp:NAME holds what the PUT built
-- (n, t1..tn request types, p1..pn plists without CommandUUID, dc the
-- DeviceConfigured plist, device_configured, applies, json as given); the
-- indexes (mdm:bpx:all, :dep, :serials) name the blueprint a device gets,
-- so the TokenUpdate (lua/checkin.lua) looks up one field, not every
-- blueprint. A serial, a DEP profile or "all" belongs to one blueprint.
local BP_MAX = 1000

-- the index entries of a blueprint, from the JSON it was stored with
local function bp_index(name, json, act)
    local a = cjson.decode(json).applies_to or {}
    if a.all then act('all', MDM_KEY_BP_ALL, nil) end
    if a.dep_profile_uuid then
        act('dep', MDM_KEY_BP_DEP, a.dep_profile_uuid)
    end
    for _, s in ipairs(a.serials or {}) do act('serial', MDM_KEY_BP_SERIALS, s) end
end

local function bp_unindex(name)
    local old = redis.call('HGET', MDM_KEY_BLUEPRINT .. name, 'json')
    if not old then return end
    bp_index(name, old, function(_, key, field)
        if field then
            if redis.call('HGET', key, field) == name then
                redis.call('HDEL', key, field)
            end
        elseif redis.call('GET', key) == name then
            redis.call('DEL', key)
        end
    end)
end

-- ARGV: 3 name, 4 JSON as given, 5 applies (all|dep|serials),
-- 6 device_configured (0|1), 7 DeviceConfigured plist, 8 n, then n
-- (request type, plist), then the profile UUID or the serials
function ops.blueprint_put()
    local name, json, applies, dc, dcplist = ARGV[3], ARGV[4], ARGV[5],
        ARGV[6], ARGV[7]
    local n = tonumber(ARGV[8])
    local first = 9 + 2 * n
    local key = MDM_KEY_BLUEPRINT .. name
    local exists = redis.call('EXISTS', key) == 1

    if not exists and redis.call('SCARD', MDM_KEY_BP_NAMES) >= BP_MAX then
        return json_error(409, 'there are ' .. BP_MAX .. ' blueprints '
                               .. 'already: delete one first')
    end

    -- what another blueprint claims refuses the PUT
    local taken
    if applies == 'all' then
        local o = redis.call('GET', MDM_KEY_BP_ALL)
        if o and o ~= name then taken = 'all devices' .. '|' .. o end
    else
        local idx = (applies == 'dep') and MDM_KEY_BP_DEP or MDM_KEY_BP_SERIALS
        for i = first, #ARGV do
            local o = redis.call('HGET', idx, ARGV[i])
            if o and o ~= name then taken = ARGV[i] .. '|' .. o break end
        end
    end
    if taken then
        local what, o = string.match(taken, '^(.*)|([^|]*)$')
        return json_error(409, 'blueprint ' .. o .. ' applies to ' .. what
                               .. ' already')
    end

    bp_unindex(name)
    redis.call('DEL', key)
    local h = {'HSET', key, 'json', json, 'applies', applies,
               'device_configured', dc, 'dc', dcplist, 'n', n,
               'updated_at', now}
    for i = 1, n do
        h[#h + 1] = 't' .. i
        h[#h + 1] = ARGV[7 + 2 * i]
        h[#h + 1] = 'p' .. i
        h[#h + 1] = ARGV[8 + 2 * i]
    end
    redis.call(unpack(h))
    redis.call('SADD', MDM_KEY_BP_NAMES, name)
    if applies == 'all' then
        redis.call('SET', MDM_KEY_BP_ALL, name)
    else
        local idx = (applies == 'dep') and MDM_KEY_BP_DEP or MDM_KEY_BP_SERIALS
        for i = first, #ARGV do redis.call('HSET', idx, ARGV[i], name) end
    end
    return {exists and 200 or 201, cjson.encode({
        name = name, commands = n, applies = applies,
        device_configured = (dc == '1'), updated_at = now_n,
        created = not exists})}
end

-- ARGV: 3 name
function ops.blueprint_get()
    local name = ARGV[3]
    local h = redis.call('HMGET', MDM_KEY_BLUEPRINT .. name, 'json',
                         'updated_at')
    if not h[1] then return json_error(404, 'unknown blueprint') end
    -- the JSON as it was given, unchanged (cjson would turn [] into {})
    return {200, '{"name":' .. cjson.encode(name) .. ',"updated_at":'
                 .. h[2] .. ',"blueprint":' .. h[1] .. '}'}
end

function ops.blueprint_list()
    local names = redis.call('SMEMBERS', MDM_KEY_BP_NAMES)
    table.sort(names)
    local items = {}
    for _, name in ipairs(names) do
        local h = redis.call('HMGET', MDM_KEY_BLUEPRINT .. name, 'applies',
                             'n', 'device_configured', 'updated_at')
        if h[1] then
            items[#items + 1] = {name = name, applies = h[1],
                commands = tonumber(h[2]), device_configured = (h[3] == '1'),
                updated_at = tonumber(h[4])}
        end
    end
    return {200, encode_with_list({}, 'blueprints', items)}
end

-- ARGV: 3 name. The runs already queued stay queued.
function ops.blueprint_delete()
    local name = ARGV[3]
    local key = MDM_KEY_BLUEPRINT .. name
    if redis.call('EXISTS', key) == 0 then
        return json_error(404, 'unknown blueprint')
    end
    bp_unindex(name)
    redis.call('DEL', key)
    redis.call('SREM', MDM_KEY_BP_NAMES, name)
    return {200, cjson.encode({name = name, deleted = true})}
end

local f = ops[op]
if not f then return json_error(404, 'unknown operation') end
return f()
