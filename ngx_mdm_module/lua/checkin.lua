-- One check-in message, atomically (see ngx_http_mdm_checkin.c).
-- KEYS: 1 enrollment, 2 device enrollment (which also holds the device's
--       certificate bindings, see common.lua), 3 certificate index (sha256
--       -> device id), 4 event stream, 5 the device's user channels (set of
--       ":<user>" suffixes).
-- ARGV: 1 MessageType, 2 enrollment id, 3 enrollment type, 4 device id,
--       5 user suffix, 6 cert sha256 ("" without identity), 7 cert notAfter,
--       8 mdm_cert_auth (off|on|retro), 9 now (ms), 10 raw body,
--       11 query string, 12 mdm_store_authenticate ("1" or "0"),
--       13 mdm_reenroll (any|bound|unenrolled), 14 mdm_events_max,
--       15 mdm_result_ttl (s), 16.. field/value pairs for the enrollment
--       hash.
-- Returns {"ok", value}, {"ok", "", "takeover", old hashes, new hash},
-- {"err", reason}, {"err", "blocked"} or {"err", "forbidden", reason}.

local enr, dev, certidx, events, users =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mtype, id, etype, did, suffix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hash, not_after, mode, now = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local body, params, store_auth = ARGV[10], ARGV[11], ARGV[12]
local reenroll, events_max, result_ttl = ARGV[13], ARGV[14], ARGV[15]

local function fields()
    local t = {}
    for i = 16, #ARGV do t[#t + 1] = ARGV[i] end
    return t
end

-- the user channels one device may have: each TokenUpdate with a new
-- UserID makes one, and a device must not grow them without bound
local USERS_MAX = 256

-- the queued commands an Authenticate marks "Cleared" one by one; beyond
-- that the queue goes without a result for each (see README)
local CLEAR_MAX = 1000
local clear_budget = CLEAR_MAX

local function user_key(s) return mdm_key(MDM_KEY_ENR, did, s) end

-- a new enrollment drops what was queued for the old one, and says so in
-- each command's result
local function clear_queue(s)
    for _, list in ipairs({mdm_queue_keys(did, s)}) do
        if clear_budget > 0 then
            for _, u in ipairs(redis.call('LRANGE', list, 0,
                                          clear_budget - 1)) do
                local rk = mdm_result_key(did, s, u)
                redis.call('HSET', rk, 'status', 'Cleared',
                           'updated_at', now, 'completed_at', now)
                mdm_expire(rk, result_ttl)
                clear_budget = clear_budget - 1
            end
        end
    end
    redis.call('DEL', mdm_queue_keys(did, s))
end

-- the device's bindings that still hold, as HSET arguments; the index
-- entries of the expired ones go
local function unexpired_bindings()
    local sec, keep = math.floor(tonumber(now) / 1000), {}
    for h, na in pairs(mdm_bindings(dev)) do
        if h == hash or tonumber(na) >= sec then
            keep[#keep + 1] = h
            keep[#keep + 1] = na
        elseif redis.call('GET', MDM_KEY_CERTIDX .. h) == did then
            redis.call('DEL', MDM_KEY_CERTIDX .. h)
        end
    end
    return keep
end

local function each_user(f)
    for _, s in ipairs(redis.call('SMEMBERS', users)) do f(s) end
end

local function event(tally)
    mdm_xadd(events, events_max,
        'type', mtype, 'id', id, 'enrollment_type', etype,
        'device_id', did, 'time', now, 'params', params,
        'token_update_tally', tally or '', 'body', body)
end

local handlers = {}

-- The unexpired certificates the device is bound to other than the one
-- presented, comma-separated, or nil: an Authenticate with a certificate
-- that is not among them takes the enrollment over from them.
local function taken_from()
    if hash == '' or mode == 'off' then return nil end
    local sec, others = math.floor(tonumber(now) / 1000), {}
    for h, na in pairs(mdm_bindings(dev)) do
        if h == hash then return nil end
        if tonumber(na) >= sec then others[#others + 1] = h end
    end
    if #others == 0 then return nil end
    table.sort(others)
    return table.concat(others, ',')
end

-- nil, or why mdm_reenroll refuses the takeover
local function reenroll_refused(old)
    -- a certificate our SCEP CA issued with this device's renewal
    -- challenge (POST /v1/renew) is its renewal, whatever the policy
    if hash ~= '' and redis.call('GET', MDM_KEY_RENEWED .. hash) == did then
        return nil
    end
    if reenroll == 'bound' then
        return 'Authenticate with certificate ' .. hash .. ' for an '
            .. 'enrollment bound to unexpired certificate ' .. old
            .. ' (mdm_reenroll bound)'
    end
    if reenroll == 'unenrolled' and redis.call('HGET', dev, 'enabled') == '1'
    then
        return 'Authenticate with certificate ' .. hash .. ' for an '
            .. 'enrolled device bound to unexpired certificate ' .. old
            .. ' (mdm_reenroll unenrolled)'
    end
    return nil
end

-- vppa (contract V3): mdm:serials maps a device's serial number to its
-- device id, so that VPP licenses, which Apple gives by serial, find the
-- enrollment to queue the install to; api.lua's delete removes the entry
local function index_serial()
    if suffix ~= '' then return end
    local serial = redis.call('HGET', enr, 'serial_number')
    if serial and serial ~= '' then
        redis.call('HSET', MDM_KEY_SERIALS, serial, did)
    end
end

function handlers.Authenticate()
    -- a new enrollment of this device: nothing of the old one carries over
    -- but the certificates bound to it (a renewal keeps the old one bound
    -- until it expires)
    mdm_migrate_bindings(dev, did)
    local old = taken_from()
    if old then
        local refused = reenroll_refused(old)
        if refused then return {'err', 'forbidden', refused} end
    end
    local keep = unexpired_bindings()
    clear_queue('')
    redis.call('DEL', enr)
    local auth = mdm_key(MDM_KEY_AUTH, did, '')
    if store_auth == '1' then
        -- a key of its own: a long value would make Redis keep the whole
        -- enrollment hash as a hashtable, several times larger
        redis.call('SET', auth, body)
    else
        redis.call('DEL', auth)
    end
    redis.call('HSET', enr, 'type', etype, 'enabled', '0',
        'token_update_tally', '0', 'authenticated_at', now,
        'last_seen', now, unpack(fields()))
    index_serial()
    if #keep > 0 then redis.call('HSET', enr, unpack(keep)) end
    each_user(function(s)
        redis.call('HSET', user_key(s), 'enabled', '0')
        clear_queue(s)
    end)
    if hash ~= '' and mode ~= 'off' then
        mdm_bind(dev, certidx, did, hash, not_after, now)
    end
    event(nil)
    if old then
        mdm_xadd(events, events_max, 'type', 'Takeover', 'id', id,
            'enrollment_type', etype, 'device_id', did, 'time', now,
            'params', params, 'old_cert_hashes', old, 'new_cert_hash', hash)
        return {'ok', '', 'takeover', old, hash}
    end
    return nil
end

-- blueprints (cmds, contract B1): on the device channel's first
-- TokenUpdate since Authenticate, the matching blueprint's commands are
-- queued in order (see ops.blueprint_put in lua/api.lua for the keys).
-- Precedence: the device's serial in a blueprint's serials, then its DEP
-- profile (mdm:dep:profiles, contract D2), then the blueprint for all.

local function blueprint_name()
    local serial = redis.call('HGET', enr, 'serial_number')
    if serial then
        local n = redis.call('HGET', MDM_KEY_BP_SERIALS, serial)
        if n then return n end
        local p = redis.call('HGET', MDM_KEY_DEP_PROFILES, serial)
        n = p and redis.call('HGET', MDM_KEY_BP_DEP, p)
        if n then return n end
    end
    return redis.call('GET', MDM_KEY_BP_ALL) or nil
end

-- a plist the blueprint PUT built (libplist's XML: the root dictionary is
-- the first <dict>) with this run's CommandUUID
local function with_uuid(plist, uuid)
    local at = string.find(plist, '<dict>', 1, true)
    return string.sub(plist, 1, at + 5) .. '\n\t<key>CommandUUID</key>\n\t'
        .. '<string>' .. uuid .. '</string>' .. string.sub(plist, at + 6)
end

local function run_blueprint()
    -- once per enrollment: Authenticate deletes the hash, and the mark
    if redis.call('HEXISTS', enr, 'blueprint') == 1 then return end
    local name = blueprint_name()
    if not name then return end
    local bp = MDM_KEY_BLUEPRINT .. name
    local h = redis.call('HMGET', bp, 'n', 'device_configured', 'dc')
    if not h[1] then return end

    local cmds = {}
    for i = 1, tonumber(h[1]) do
        cmds[i] = redis.call('HMGET', bp, 't' .. i, 'p' .. i)
    end
    -- an ADE device waits in Setup Assistant until it gets this, last
    if h[2] == '1'
       and redis.call('HGET', enr, 'awaiting_configuration') == '1' then
        cmds[#cmds + 1] = {'DeviceConfigured', h[3]}
    end

    local seq = redis.call('INCR', MDM_KEY_BP_SEQ)
    local _, queue = mdm_queue_keys(did, suffix)
    local uuids, types = {}, {}
    for i, c in ipairs(cmds) do
        local uuid = 'bp.' .. name .. '.' .. seq .. '.' .. i
        uuids[i], types[i] = uuid, c[1]
        local ckey = MDM_KEY_CMD .. uuid
        redis.call('HSET', ckey, 'plist', with_uuid(c[2], uuid),
                   'request_type', c[1], 'created_at', now, 'priority', '0')
        redis.call('SADD', ckey .. ':targets', id)
        mdm_expire(ckey, result_ttl)
        mdm_expire(ckey .. ':targets', result_ttl)
        redis.call('RPUSH', queue, uuid)
    end
    redis.call('HSET', enr, 'blueprint', name, 'blueprint_at', now)
    -- one pending push per enrollment (contract C1)
    if #cmds > 0 and redis.call('SADD', MDM_KEY_PUSH_PENDING, id) == 1 then
        redis.call('RPUSH', MDM_KEY_PUSH, id)
    end
    -- for the webhooks, after the TokenUpdate's own event (same lane: id)
    return {'type', 'blueprint.run', 'id', id, 'enrollment_id', id,
            'device_id', did, 'time', now, 'blueprint', name,
            'command_uuids', table.concat(uuids, ','),
            'request_types', table.concat(types, ',')}
end

-- ddm (contract B1): the first TokenUpdate of a (re-)enrollment that has
-- declarations queues the DeclarativeManagement command, or a re-enrolled
-- device, whose DDM state enrollment wiped, would never sync again
local function ddm_enrolled(tally)
    if tally ~= 1 then return end
    local items = mdm_ddm_items(did, suffix)
    if #items == 0 then return end
    mdm_ddm_command(did, suffix, id, now, result_ttl, mdm_ddm_token(items))
end

function handlers.TokenUpdate()
    if suffix ~= '' and redis.call('SISMEMBER', users, suffix) == 0
       and redis.call('SCARD', users) >= USERS_MAX then
        return {'err', 'the device has ' .. USERS_MAX .. ' user channels '
                       .. 'already'}
    end
    local f = fields()
    redis.call('HSET', enr, 'type', etype, 'enabled', '1',
        'token_updated_at', now, 'last_seen', now, unpack(f))
    index_serial()
    -- a fresh token: whatever APNs said of the old one no longer holds
    redis.call('HDEL', enr, 'token_invalid', 'repushes')
    -- the device's Topic is not added to mdm:topics: that set holds the
    -- topics of uploaded push certificates only (the API adds them)
    if suffix ~= '' then
        redis.call('HSET', enr, 'parent', did)
        redis.call('SADD', users, suffix)
    end
    local tally = redis.call('HINCRBY', enr, 'token_update_tally', 1)
    local ran = tally == 1 and suffix == '' and run_blueprint()
    ddm_enrolled(tally)
    event(tostring(tally))
    if ran then mdm_xadd(events, events_max, unpack(ran)) end
    return nil
end

function handlers.CheckOut()
    redis.call('HSET', enr, 'enabled', '0', 'checked_out_at', now,
        'last_seen', now)
    each_user(function(s) redis.call('HSET', user_key(s), 'enabled', '0') end)
    event(nil)
    return nil
end

function handlers.SetBootstrapToken()
    local f = fields()
    redis.call('HSET', enr, 'last_seen', now)
    if #f == 0 or f[1] ~= 'bootstrap_token' then
        -- no or an empty BootstrapToken means "delete the escrowed one"
        redis.call('HDEL', enr, 'bootstrap_token')
    end
    if #f > 0 then redis.call('HSET', enr, unpack(f)) end
    event(nil)
    return nil
end

function handlers.GetBootstrapToken()
    redis.call('HSET', enr, 'last_seen', now)
    event(nil)
    return redis.call('HGET', dev, 'bootstrap_token') or ''
end

function handlers.UserAuthenticate()
    event(nil)
    return nil
end

if mdm_blocked(did) then return {'err', 'blocked'} end

if redis.call('EXISTS', dev) == 0 and mtype ~= 'Authenticate' then
    return {'err', 'unknown enrollment: no Authenticate for device ' .. did}
end

if mtype ~= 'Authenticate' and mtype ~= 'TokenUpdate'
   and redis.call('EXISTS', enr) == 0 and mtype ~= 'UserAuthenticate' then
    return {'err', 'unknown enrollment'}
end

local denied = mdm_authorize(mtype, mode, dev, certidx, did, hash, not_after,
                             now)
if denied then return {'err', denied} end

local h = handlers[mtype]
if not h then return {'err', 'unsupported MessageType'} end

local value = h()
if type(value) == 'table' then return value end
return {'ok', value or ''}
