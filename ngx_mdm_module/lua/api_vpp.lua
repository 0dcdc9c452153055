-- The admin API's VPP (Apps and Books) endpoints, ngx_http_mdm_api_vpp*.c,
-- contracts V1-V5: one operation per call. ARGV[1] is the operation, ARGV[2]
-- the time (ms), ARGV[3] the location's name (checked by the C side:
-- [A-Za-z0-9._-]{1,64}, "" where none); the rest depends on the operation.
-- Returns {http status, JSON body} unless said.
--
-- The module writes a location's config, its install records and the jobs;
-- the worker owns its token (written only after Apple accepted it), status,
-- assets and assignments (V1), which are only read here, and deleted with
-- the location.

local op, now, name = ARGV[1], ARGV[2], ARGV[3]
local now_n = tonumber(now)

-- one location per content token: an organization has a handful
local MAX_NAMES = 1000

-- V2: jobs waiting for the worker at most
local JOBS_MAX = 1000

-- V3: an install record lives 30 days (the worker refreshes it)
local INSTALL_TTL = 30 * 86400

-- Apple warns 15 days before a token expires; so do we
local WARN_DAYS = 15

local APPLE = 'https://vpp.itunes.apple.com/mdm/v2'

-- common.lua's (-- api)
local json_error, encode_with_list, next_cursor =
    mdm_json_error, mdm_encode_with_list, mdm_next_cursor

local function vkey(what)
    return MDM_KEY_VPP .. name .. ':' .. what
end

local function known()
    return redis.call('SISMEMBER', MDM_KEY_VPP_NAMES, name) == 1
end

local function unknown()
    return json_error(404, 'unknown VPP location ' .. name)
end

-- a write makes the name known (V1), within MAX_NAMES: false when full
local function add()
    if known() then return true end
    if redis.call('SCARD', MDM_KEY_VPP_NAMES) >= MAX_NAMES then
        return false
    end
    redis.call('SADD', MDM_KEY_VPP_NAMES, name)
    return true
end

local function too_many()
    return json_error(409, 'there are already ' .. MAX_NAMES
                           .. ' VPP locations; this one would be one more')
end

local function queue_job(job)
    if redis.call('LLEN', MDM_KEY_VPP_JOBS) >= JOBS_MAX then
        return json_error(503, 'the VPP job queue is full (' .. JOBS_MAX
                               .. ' jobs wait for the worker)')
    end
    redis.call('RPUSH', MDM_KEY_VPP_JOBS, job)
    return {202, ''}
end

-- the worker's status of the location as the API shows it (V1, V4)
local function location(n)
    local k = MDM_KEY_VPP .. n .. ':'
    local h = redis.call('HGETALL', k .. 'status')
    local s = {}
    for i = 1, #h, 2 do s[h[i]] = h[i + 1] end
    local o = {
        name = n,
        has_token = redis.call('EXISTS', k .. 'token') == 1,
        base_url = redis.call('HGET', k .. 'config', 'base_url') or APPLE,
        org = s.org, location = s.location,
        last_result = s.last_result, last_error = s.last_error,
        error_number = tonumber(s.error_number),
        last_sync_at = tonumber(s.last_sync_at),
        next_sync_at = tonumber(s.next_sync_at),
        assets = tonumber(s.assets), version_id = s.version_id,
        stopped = s.stopped == '1',
        stop_reason = (s.stopped == '1') and s.stop_reason or nil,
    }
    local exp = tonumber(s.token_expiry)
    if exp then
        o.token_expiry = exp
        local left = exp - math.floor(now_n / 1000)
        o.expires_in_days = math.floor(left / 86400)
        if left <= 0 then
            o.warning = 'the content token has expired: download a new '
                .. 'one (Apple Business Manager, Preferences, Payments '
                .. 'and Billing) and PUT it to /v1/vpp/tokens/' .. n
        elseif left < WARN_DAYS * 86400 then
            o.warning = 'the content token expires in '
                .. o.expires_in_days .. ' days: download a new one and '
                .. 'PUT it to /v1/vpp/tokens/' .. n
        end
    end
    return o
end

local ops = {}

-- tokens (V1, V2) ----------------------------------------------------------

-- ARGV: 4 the token job (JSON). {202, ""} once queued.
function ops.token_put()
    if not add() then return too_many() end
    return queue_job(ARGV[4])
end

-- ARGV: 3 "", 4 job id. {1, reply} once the worker answered, else {0}.
function ops.reply_poll()
    local r = redis.call('GETDEL', MDM_KEY_VPP_REPLY .. ARGV[4])
    if r then return {1, r} end
    return {0}
end

function ops.token_get()
    if not known() then return unknown() end
    return {200, cjson.encode(location(name))}
end

function ops.tokens()
    local names = redis.call('SMEMBERS', MDM_KEY_VPP_NAMES)
    table.sort(names)
    local list = {}
    for i, n in ipairs(names) do list[i] = location(n) end
    return {200, encode_with_list({}, 'locations', list)}
end

-- DELETE, in steps of at most DELETE_STEP assignment keys (a location may
-- hold 100,000 licenses, and a script holds Redis for everyone while it
-- runs; the C side calls again while the answer is 100). ARGV: 4 "0" for
-- the first step, "1" after. The first step forgets the name and the small
-- keys at once (the worker sees no token any more); every step takes apps
-- and serials from the worker's indexes (live, a full walk's "new:", a
-- swap's "idx:") and drops their assignment sets. A DELETE cut short (nginx
-- stopped between steps) left the name forgotten and some indexes behind:
-- a DELETE of that name goes on with them rather than answering 404.
local DELETE_STEP = 1000
local DELETE_INDEXES = {'adams', 'serials', 'new:adams', 'new:serials',
                        'idx:adams', 'idx:serials'}

local function delete_left()
    for _, k in ipairs(DELETE_INDEXES) do
        if redis.call('EXISTS', vkey(k)) == 1 then return true end
    end
    return false
end

function ops.delete()
    local count = vkey('deleting')
    if ARGV[4] == '0' and not known() then
        if not delete_left() then return unknown() end
        if redis.call('EXISTS', count) == 0 then
            redis.call('HSET', count, 'assets', 0, 'serials', 0)
        end
        redis.call('EXPIRE', count, 3600)
    elseif ARGV[4] == '0' then
        for _, a in ipairs(redis.call('HKEYS', vkey('assets'))) do
            redis.call('SADD', vkey('adams'), a)
        end
        redis.call('UNLINK', vkey('token'), vkey('config'), vkey('status'),
                   vkey('assets'), vkey('assets:new'), vkey('notify_token'))
        redis.call('SREM', MDM_KEY_VPP_NAMES, name)
        redis.call('SREM', MDM_KEY_VPP_SYNCNOW, name)
        redis.call('HSET', count, 'assets', 0, 'serials', 0)
        redis.call('EXPIRE', count, 3600)
    end
    local left = DELETE_STEP
    for _, pre in ipairs({'', 'new:', 'idx:'}) do
        for _, a in ipairs(redis.call('SPOP', vkey(pre .. 'adams'), left)) do
            redis.call('UNLINK', vkey('asg:' .. a), vkey('new:asg:' .. a))
            redis.call('HINCRBY', count, 'assets', 1)
            left = left - 1
        end
        if left <= 0 then return {100, ''} end
        for _, s in ipairs(redis.call('SPOP', vkey(pre .. 'serials'), left)) do
            redis.call('UNLINK', vkey('sasg:' .. s), vkey('new:sasg:' .. s))
            redis.call('HINCRBY', count, 'serials', 1)
            left = left - 1
        end
        if left <= 0 then return {100, ''} end
    end
    local c = redis.call('HMGET', count, 'assets', 'serials')
    redis.call('DEL', count)
    return {200, cjson.encode({name = name, deleted = true,
                               assets = tonumber(c[1]) or 0,
                               serials = tonumber(c[2]) or 0})}
end

-- config (V1) --------------------------------------------------------------

local function config()
    local h = redis.call('HGETALL', vkey('config'))
    local c = {}
    for i = 1, #h, 2 do c[h[i]] = h[i + 1] end
    return {name = name, base_url = c.base_url or APPLE,
            notify_url = c.notify_url, default = (c.base_url == nil)}
end

function ops.config_get()
    if not known() then return unknown() end
    return {200, cjson.encode(config())}
end

-- ARGV: 4 base_url ("" = Apple's), 5 notify_url ("" = none)
function ops.config_put()
    if not add() then return too_many() end
    local k = vkey('config')
    if ARGV[4] == '' then redis.call('HDEL', k, 'base_url')
    else redis.call('HSET', k, 'base_url', ARGV[4]) end
    if ARGV[5] == '' then redis.call('HDEL', k, 'notify_url')
    else redis.call('HSET', k, 'notify_url', ARGV[5]) end
    return {200, cjson.encode(config())}
end

-- assets and assignments (V1) ---------------------------------------------

-- ARGV: 4 cursor, 5 limit. Apple's items verbatim.
function ops.assets()
    if not known() then return unknown() end
    local r = redis.call('HSCAN', vkey('assets'), ARGV[4] == '' and '0'
                         or ARGV[4], 'COUNT', ARGV[5])
    local items = {}
    for i = 2, #r[2], 2 do items[#items + 1] = r[2][i] end
    return {200, '{"name":' .. cjson.encode(name) .. ',"count":'
                 .. redis.call('HLEN', vkey('assets')) .. ',"assets":['
                 .. table.concat(items, ',') .. '],"next_cursor":'
                 .. cjson.encode(next_cursor(r[1])) .. '}'}
end

-- ARGV: 4 "serial" or "adam_id", 5 its value, 6 cursor, 7 limit
function ops.assignments()
    if not known() then return unknown() end
    if ARGV[4] == 'serial' then
        local a = redis.call('SMEMBERS', vkey('sasg:' .. ARGV[5]))
        table.sort(a)
        return {200, encode_with_list({name = name, serial = ARGV[5]},
                                      'adam_ids', a)}
    end
    local k = vkey('asg:' .. ARGV[5])
    local r = redis.call('SSCAN', k, ARGV[6] == '' and '0' or ARGV[6],
                         'COUNT', ARGV[7])
    return {200, encode_with_list({name = name, adam_id = ARGV[5],
                                   count = redis.call('SCARD', k),
                                   next_cursor = next_cursor(r[1])},
                                  'serials', r[2])}
end

-- ARGV: 4 the sync job (JSON)
function ops.sync()
    if not known() then return unknown() end
    if redis.call('EXISTS', vkey('token')) == 0 then
        return json_error(409, 'VPP location ' .. name .. ' has no token '
                               .. 'yet: PUT /v1/vpp/tokens/' .. name)
    end
    return queue_job(ARGV[4])
end

-- installs (V3) ------------------------------------------------------------

-- the device-channel id of an enrollment, and its serial
local function enrollment_serial(id)
    if string.find(id, ':', 1, true) then return nil end
    return redis.call('HGET', mdm_key(MDM_KEY_ENR, id, ''), 'serial_number')
end

-- ARGV: 4 install id, 5 action (install|remove), 6 adam_id,
-- 7 pricing_param, 8 command uuid, 9 plist, 10 request type, 11 the
-- command's TTL (s, "0" keeps it), 12 identifier ("" for install), 13 the
-- job (JSON), 14 "serials" or "enrollment_ids", 15.. the devices
function ops.install()
    if not known() then return unknown() end
    if redis.call('EXISTS', vkey('token')) == 0 then
        return json_error(409, 'VPP location ' .. name .. ' has no token '
                               .. 'yet: PUT /v1/vpp/tokens/' .. name)
    end
    if redis.call('HGET', vkey('status'), 'stopped') == '1' then
        return json_error(409, 'VPP location ' .. name .. ' is stopped ('
            .. (redis.call('HGET', vkey('status'), 'stop_reason') or '?')
            .. '): PUT a new token first')
    end
    local iid, uuid = ARGV[4], ARGV[8]
    local ikey = MDM_KEY_VPP_INSTALL .. iid
    local ckey = MDM_KEY_CMD .. uuid
    if redis.call('EXISTS', ckey) == 1 then
        return json_error(409, 'command UUID ' .. uuid .. ' already exists')
    end

    -- resolve every device first: a refusal changes nothing
    local devs, order, bad, seen = {}, {}, {}, {}
    local by_serial = (ARGV[14] == 'serials')
    for i = 15, #ARGV do
        local v = ARGV[i]
        if not seen[v] then
            seen[v] = true
            local serial, eid
            if by_serial then
                serial = v
                eid = redis.call('HGET', MDM_KEY_SERIALS, v) or ''
                if eid ~= '' and redis.call('EXISTS',
                        mdm_key(MDM_KEY_ENR, eid, '')) == 0 then
                    eid = ''
                end
            else
                eid = v
                serial = enrollment_serial(v)
                if not serial then bad[#bad + 1] = v end
            end
            if serial and not devs[serial] then
                devs[serial] = eid
                order[#order + 1] = serial
            end
        end
    end
    if #bad > 0 then
        table.sort(bad)
        return {400, cjson.encode({
            error = 'unknown enrollments, or without a serial number '
                    .. '(VPP licenses go to serial numbers)',
            enrollment_ids = bad})}
    end
    if redis.call('LLEN', MDM_KEY_VPP_JOBS) >= JOBS_MAX then
        return json_error(503, 'the VPP job queue is full (' .. JOBS_MAX
                               .. ' jobs wait for the worker)')
    end

    -- the command, stored unqueued: the worker queues it per device once
    -- that device's license is associated
    redis.call('HSET', ckey, 'plist', ARGV[9], 'request_type', ARGV[10],
               'created_at', now, 'priority', '0')
    mdm_expire(ckey, ARGV[11])

    local dkey = ikey .. ':dev'
    local enrolled = 0
    for _, serial in ipairs(order) do
        local eid = devs[serial]
        if eid ~= '' then enrolled = enrolled + 1 end
        redis.call('HSET', dkey, serial, cjson.encode({
            enrollment_id = eid,
            state = (eid ~= '') and 'pending' or 'no_enrollment'}))
    end
    redis.call('HSET', ikey, 'name', name, 'action', ARGV[5],
               'adam_id', ARGV[6], 'pricing_param', ARGV[7],
               'command_uuid', uuid, 'created_at', now, 'state', 'pending',
               'error', '', 'total', #order, 'associated', 0, 'queued', 0,
               'failed', 0)
    if ARGV[12] ~= '' then redis.call('HSET', ikey, 'identifier', ARGV[12]) end
    redis.call('EXPIRE', ikey, INSTALL_TTL)
    redis.call('EXPIRE', dkey, INSTALL_TTL)
    redis.call('RPUSH', MDM_KEY_VPP_JOBS, ARGV[13])

    return {202, cjson.encode({install_id = iid, name = name,
        action = ARGV[5], adam_id = ARGV[6], command_uuid = uuid,
        total = #order, enrolled = enrolled,
        not_enrolled = #order - enrolled})}
end

local COUNTS = {total = true, associated = true, queued = true,
                failed = true, created_at = true}

-- ARGV: 4 install id, 5 cursor, 6 limit, 7 state filter ("" for all)
function ops.install_get()
    local ikey = MDM_KEY_VPP_INSTALL .. ARGV[4]
    local h = redis.call('HGETALL', ikey)
    local o = {install_id = ARGV[4]}
    for i = 1, #h, 2 do
        o[h[i]] = COUNTS[h[i]] and tonumber(h[i + 1]) or h[i + 1]
    end
    if #h == 0 or o.name ~= name then
        return json_error(404, 'VPP location ' .. name .. ' has no install '
                               .. ARGV[4])
    end
    local r = redis.call('HSCAN', ikey .. ':dev', ARGV[5] == '' and '0'
                         or ARGV[5], 'COUNT', ARGV[6])
    local list = {}
    for i = 1, #r[2], 2 do
        local ok, d = pcall(cjson.decode, r[2][i + 1])
        if not ok or type(d) ~= 'table' then d = {state = 'unknown'} end
        if ARGV[7] == '' or d.state == ARGV[7] then
            d.serial = r[2][i]
            if d.enrollment_id and d.enrollment_id ~= ''
               and o.command_uuid then
                local did, suffix = mdm_split_id(d.enrollment_id)
                d.command_status = redis.call('HGET',
                    mdm_result_key(did, suffix, o.command_uuid), 'status')
                    or nil
            end
            list[#list + 1] = d
        end
    end
    o.next_cursor = next_cursor(r[1])
    return {200, encode_with_list(o, 'devices', list)}
end

-- notifications (V5) -------------------------------------------------------

-- ARGV: 4 the bearer token, 5 notificationId, 6 notificationType, 7 the
-- body, 8 the events' MAXLEN
function ops.notify()
    local want = known() and redis.call('GET', vkey('notify_token'))
    if not want or want == '' or want ~= ARGV[4] then
        return json_error(401, 'wrong or missing bearer token for VPP '
                               .. 'location ' .. name)
    end
    if not redis.call('SET', MDM_KEY_VPP_NOTIF .. ARGV[5], '1', 'NX',
                      'EX', 86400) then
        return {200, cjson.encode({duplicate = true})}
    end
    mdm_xadd(MDM_KEY_EVENTS, ARGV[8], 'type', 'vpp.notification',
             'vpp_name', name, 'notification_type', ARGV[6],
             'notification_id', ARGV[5], 'time', now, 'body', ARGV[7])
    if ARGV[6] == 'ASSET_COUNT' or ARGV[6] == 'ASSET_MANAGEMENT' then
        redis.call('SADD', MDM_KEY_VPP_SYNCNOW, name)
    end
    return {200, cjson.encode({duplicate = false})}
end

local f = ops[op]
if not f then return json_error(404, 'unknown operation') end
return f()
