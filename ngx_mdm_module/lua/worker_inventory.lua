-- mdm-worker: one step (run every second) of the inventory refresh
-- (inventory_interval, issue 12): device channels whose inventory
-- (inventory_at, or inventory_queued_at: one is asked for already) is
-- older than the interval get a DeviceInformation, at most ARGV[4] per
-- step. A step scans enough keys for a pass over the keyspace to take half
-- the interval, as the re-push schedule does, so the devices are spread
-- over the interval by when they were last asked. ARGV: 1 cursor, 2 now
-- (ms), 3 interval (ms), 4 at most how many per step, 5 how long the
-- command is kept (s). Returns {next cursor, how many were queued}.
local now, every, batch = tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4])
local step = math.min(100000, math.max(500,
    math.ceil(redis.call('DBSIZE') * 2000 / every)))
-- device channels only: their key ends with the hash tag
local r = redis.call('SCAN', ARGV[1], 'MATCH', MDM_KEY_ENR .. '{*}',
                     'COUNT', step)

-- the queries of the module's DeviceInformation template (its default,
-- ngx_http_mdm_template_table.c): t/inventory-worker.t compares them
local QUERIES = {'DeviceName', 'OSVersion', 'BuildVersion', 'ModelName',
    'Model', 'ProductName', 'SerialNumber', 'DeviceCapacity',
    'AvailableDeviceCapacity', 'BatteryLevel', 'UDID', 'IsSupervised',
    'IsActivationLockEnabled', 'WiFiMAC', 'IsMDMLostModeEnabled'}

local function plist(uuid)
    local q = {}
    for i, s in ipairs(QUERIES) do
        q[i] = '\t\t\t<string>' .. s .. '</string>\n'
    end
    return '<?xml version="1.0" encoding="UTF-8"?>\n'
        .. '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        .. '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        .. '<plist version="1.0">\n<dict>\n\t<key>Command</key>\n\t<dict>\n'
        .. '\t\t<key>RequestType</key>\n\t\t<string>DeviceInformation</string>\n'
        .. '\t\t<key>Queries</key>\n\t\t<array>\n' .. table.concat(q)
        .. '\t\t</array>\n\t</dict>\n\t<key>CommandUUID</key>\n\t<string>'
        .. uuid .. '</string>\n</dict>\n</plist>\n'
end

local queued = 0
for _, key in ipairs(r[2]) do
    if queued >= batch then break end
    local did = string.match(key, '^mdm:enr:{([^}]*)}$')
    if did and redis.call('TYPE', key).ok == 'hash' then
        local e = redis.call('HMGET', key, 'enabled', 'inventory_at',
                             'inventory_queued_at')
        local last = math.max(tonumber(e[2] or '0'), tonumber(e[3] or '0'))
        if e[1] == '1' and now - last >= every then
            local uuid = 'inv.' .. redis.call('INCR', MDM_KEY_INV_SEQ)
            local ckey = MDM_KEY_CMD .. uuid
            -- unanswered by the next refresh: it expires, a new one goes
            -- its result is kept one interval (connect.lua reads
            -- result_ttl): the inventory has what matters of it
            redis.call('HSET', ckey, 'plist', plist(uuid),
                       'request_type', 'DeviceInformation', 'created_at', now,
                       'priority', '0', 'expires_at', now + every,
                       'result_ttl', math.ceil(every / 1000))
            redis.call('SADD', ckey .. ':targets', did)
            redis.call('EXPIRE', ckey, ARGV[5])
            redis.call('EXPIRE', ckey .. ':targets', ARGV[5])
            local _, queue = mdm_queue_keys(did, '')
            redis.call('RPUSH', queue, uuid)
            redis.call('HSET', key, 'inventory_queued_at', now)
            -- one pending push per enrollment (C1)
            if redis.call('SADD', MDM_KEY_PUSH_PENDING, did) == 1 then
                redis.call('RPUSH', MDM_KEY_PUSH, did)
            end
            queued = queued + 1
        end
    end
end
return {r[1], queued}
