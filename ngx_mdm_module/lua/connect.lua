-- One command report, atomically: store the result, drop an answered command,
-- pick the next one (see ngx_http_mdm_connect.c).
-- KEYS: 1 enrollment, 2 device enrollment (with the certificate
--       bindings), 3 certificate index, 4 event stream, 5 the enrollment's
--       queue (its priority lane, served first, is mdm:qp: beside it).
-- ARGV: 1 Status, 2 CommandUUID ("" for Idle), 3 enrollment id,
--       4 enrollment type, 5 device id, 6 user suffix, 7 cert sha256,
--       8 cert notAfter, 9 mdm_cert_auth mode, 10 now (ms), 11 raw body,
--       12 query string, 13 mdm_events_max, 14 mdm_result_ttl (s),
--       15.. inventory field/value pairs of an Acknowledged DeviceInformation
--       or SecurityInfo (ngx_http_mdm_inventory.c).
-- Returns {"ok", next command plist or "", "queued" | "not queued" |
-- "unknown" | ""}, {"err", reason} or {"err", "blocked"}.
--
-- The work is bounded whatever the queue's length: at most MDM_SCAN_MAX
-- entries of each list are looked at (see pick below and the README).

local enr, dev, certidx, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local status, uuid, id, etype, did, suffix =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local hash, not_after, mode, now, body, params =
    ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local events_max, result_ttl = ARGV[13], ARGV[14]
local now_n = tonumber(now)
local lane, queue = mdm_queue_keys(did, suffix)

if mdm_blocked(did) then return {'err', 'blocked'} end

if redis.call('HGET', enr, 'enabled') ~= '1' then
    if redis.call('EXISTS', enr) == 0 then
        return {'err', 'unknown enrollment'}
    end
    return {'err', 'enrollment is disabled (no TokenUpdate since '
                   .. 'Authenticate, or checked out)'}
end

local denied = mdm_authorize('Connect', mode, dev, certidx, did, hash,
                             not_after, now)
if denied then return {'err', denied} end

redis.call('HSET', enr, 'last_seen', now)

-- the list among lane and queue that holds uuid within the scanned
-- head, or nil: a command can only have been delivered from there
local function holding(u)
    for _, list in ipairs({lane, queue}) do
        if redis.call('LPOS', list, u, 'MAXLEN', MDM_SCAN_MAX) then
            return list
        end
    end
    return nil
end

-- the report is stored before the next command is chosen, but only for a
-- command this enrollment was given: anything else is counted, not kept

local known = ''

if status ~= 'Idle' then
    local rk = mdm_result_key(did, suffix, uuid)

    if redis.call('EXISTS', rk) == 0
       and redis.call('SISMEMBER', MDM_KEY_CMD .. uuid .. ':targets', id) == 0
    then
        redis.call('HINCRBY', MDM_KEY_STATS_MODULE, 'unknown_reports', 1)
        known = 'unknown'
    else
        local list = holding(uuid)
        known = list and 'queued' or 'not queued'

        redis.call('HSET', rk, 'status', status, 'report', body,
                   'updated_at', now)
        if status == 'NotNow' then
            redis.call('HINCRBY', rk, 'not_now_tally', 1)
        elseif list then
            -- Acknowledged, Error, CommandFormatError: answered
            redis.call('LREM', list, 1, uuid)
            redis.call('HSET', rk, 'completed_at', now)
        end
        -- cmds: a command may keep its results shorter (the worker's
        -- inventory refresh: one interval, the next answer replaces it)
        mdm_expire(rk, redis.call('HGET', MDM_KEY_CMD .. uuid, 'result_ttl')
                       or result_ttl)

        -- cmds: the inventory, of the device (a user channel may ask too),
        -- from an answer to a command this enrollment was given
        if #ARGV > 14 then
            local inv = {'HSET', dev, 'inventory_at', now}
            for i = 15, #ARGV do inv[#inv + 1] = ARGV[i] end
            redis.call(unpack(inv))
        end
    end
end

-- an Idle event only when a webhook asked for them (mdm-worker keeps
-- mdm:webhooks:want at "all" then): a fleet's Idles are most of its traffic
if known ~= 'unknown'
   and (status ~= 'Idle'
        or redis.call('GET', MDM_KEY_WEBHOOKS_WANT) == 'all') then
    mdm_xadd(events, events_max, 'type', 'Connect', 'id', id,
        'enrollment_type', etype, 'device_id', did, 'time', now,
        'params', params, 'status', status, 'command_uuid', uuid,
        'body', body)
end

-- A command leaves the queue when it expires or has been delivered its
-- maximum number of times, with an "Expired" result, so one command a
-- device never answers does not block the rest.
local function expire(list, u, rk)
    redis.call('LREM', list, 1, u)
    redis.call('HSET', rk, 'status', 'Expired', 'updated_at', now,
               'completed_at', now)
    mdm_expire(rk, result_ttl)
end

-- NotNow'd commands are skipped only in the reply to a NotNow (NanoMDM)
local skip_not_now = (status == 'NotNow')

-- The first command among the first MDM_SCAN_MAX of list that can go out
-- now, or nil.  Deleted and expired ones met on the way leave the list.
-- When all of them are NotNow'd, the reply to a NotNow is empty even if a
-- command further down could go: the device asks again at its next
-- check-in, which then gets the head of the queue.
local function pick(list)
    local pos, seen = 0, 0
    while seen < MDM_SCAN_MAX do
        local batch = redis.call('LRANGE', list, pos,
                                 pos + math.min(15, MDM_SCAN_MAX - seen - 1))
        if #batch == 0 then return nil end

        local removed = 0
        for _, u in ipairs(batch) do
            seen = seen + 1
            local c = redis.call('HMGET', MDM_KEY_CMD .. u, 'plist',
                                 'expires_at', 'max_deliveries', 'result_ttl')
            local rk = mdm_result_key(did, suffix, u)
            local r = redis.call('HMGET', rk, 'status', 'deliveries')
            local deliveries = tonumber(r[2] or '0')

            if not c[1] then
                -- deleted through the API, or expired with mdm_result_ttl
                redis.call('LREM', list, 1, u)
                removed = removed + 1
            elseif (c[2] and tonumber(c[2]) <= now_n)
                   or (c[3] and deliveries >= tonumber(c[3])) then
                expire(list, u, rk)
                removed = removed + 1
            elseif not (skip_not_now and r[1] == 'NotNow') then
                redis.call('HSET', rk, 'deliveries', deliveries + 1,
                           'delivered_at', now)
                mdm_expire(rk, c[4] or result_ttl)
                return c[1]
            end
        end

        pos = pos + #batch - removed
    end
    return nil
end

return {'ok', pick(lane) or pick(queue) or '', known}
