-- mdm_metrics: what only Redis knows, as Prometheus exposition lines (the
-- module adds its own counters in front).  ARGV[1]: now, in seconds.
-- Every read is bounded: counters hashes, lengths, and one entry per push
-- certificate topic, DEP name and worker.
local now = tonumber(ARGV[1])
local out = {}

local function esc(s)
    return (tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n'))
end

local function family(name, kind, help)
    out[#out + 1] = '# HELP ' .. name .. ' ' .. help
    out[#out + 1] = '# TYPE ' .. name .. ' ' .. kind
end

local function sample(name, labels, value)
    local l = {}
    for i = 1, #labels, 2 do
        l[#l + 1] = labels[i] .. '="' .. esc(labels[i + 1]) .. '"'
    end
    out[#out + 1] = name .. (#l > 0 and ('{' .. table.concat(l, ',') .. '}')
                                   or '') .. ' ' .. tostring(value)
end

-- "2027-12-02T12:00:00Z" (or with an offset) in seconds; nil if not one
local function rfc3339(s)
    local y, mo, d, h, mi, sec, rest = tostring(s):match(
        '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)%.?%d*(.*)$')
    if not y then return nil end
    y, mo = tonumber(y), tonumber(mo)
    if mo <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = (mo + 9) % 12
    local doy = math.floor((153 * mp + 2) / 5) + tonumber(d) - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    local days = era * 146097 + doe - 719468
    local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
              + tonumber(sec)
    local sign, oh, om = rest:match('^([+-])(%d%d):(%d%d)$')
    if sign then
        local off = tonumber(oh) * 3600 + tonumber(om) * 60
        t = (sign == '+') and t - off or t + off
    end
    return t
end

-- mdm-worker's push outcomes (worker_result.lua counts them)
family('ngx_mdm_apns_pushes_total', 'counter',
       'APNs pushes by outcome, as mdm-worker recorded them.')
local apns = redis.call('HGETALL', MDM_KEY_STATS_APNS)
for i = 1, #apns, 2 do
    sample('ngx_mdm_apns_pushes_total', {'result', apns[i]}, apns[i + 1])
end

family('ngx_mdm_unknown_reports_total', 'counter',
       'Command reports for commands never queued to that enrollment.')
sample('ngx_mdm_unknown_reports_total', {},
       redis.call('HGET', MDM_KEY_STATS_MODULE, 'unknown_reports') or 0)

family('ngx_mdm_push_queue_length', 'gauge',
       'Enrollments waiting for a push (mdm:push).')
sample('ngx_mdm_push_queue_length', {}, redis.call('LLEN', MDM_KEY_PUSH))

-- webhooks: the stream, what is not delivered yet, the dead letters
family('ngx_mdm_events_stream_length', 'gauge',
       'Entries in the event stream (mdm:events).')
sample('ngx_mdm_events_stream_length', {}, redis.call('XLEN', MDM_KEY_EVENTS))
family('ngx_mdm_webhook_dead_letters', 'gauge',
       'Events that exhausted their webhook retries (mdm:webhooks:dead).')
sample('ngx_mdm_webhook_dead_letters', {},
       redis.call('XLEN', MDM_KEY_WEBHOOKS_DEAD))
family('ngx_mdm_webhook_pending', 'gauge',
       'Events read by a worker and not yet delivered.')
local ok, pend = pcall(redis.call, 'XPENDING', MDM_KEY_EVENTS, 'webhooks')
sample('ngx_mdm_webhook_pending', {}, ok and pend[1] or 0)

-- workers: those with processing lists, and whether their heartbeat lives
family('ngx_mdm_worker_up', 'gauge',
       'mdm-workers known by their push processing lists: 1 while their '
       .. 'heartbeat key lives.')
for _, proc in ipairs(redis.call('SMEMBERS', MDM_KEY_PUSH_PROCS)) do
    local id = proc:sub(#MDM_KEY_PUSH_PROC + 1)
    sample('ngx_mdm_worker_up', {'worker', id},
           redis.call('EXISTS', MDM_KEY_WORKER .. id))
end

-- what expires
family('ngx_mdm_push_certificate_expiry_timestamp_seconds', 'gauge',
       'notAfter of each uploaded APNs push certificate, by topic.')
for _, topic in ipairs(redis.call('SMEMBERS', MDM_KEY_TOPICS)) do
    local na = redis.call('HGET', MDM_KEY_PUSHCERT .. topic, 'not_after')
    if na then
        sample('ngx_mdm_push_certificate_expiry_timestamp_seconds',
               {'topic', topic}, na)
    end
end

family('ngx_mdm_identities_expiring_30d', 'gauge',
       'Device identities issued by the SCEP CA whose notAfter is within '
       .. '30 days.')
sample('ngx_mdm_identities_expiring_30d', {},
       redis.call('ZCOUNT', MDM_KEY_SCEP_CERTS, now, now + 30 * 86400))

-- DEP, per name (the worker's status hash, the token's expiry)
family('ngx_mdm_dep_token_expiry_timestamp_seconds', 'gauge',
       'access_token_expiry of each DEP name\'s OAuth token.')
local names = redis.call('SMEMBERS', MDM_KEY_DEP_NAMES)
local status = {}
for _, name in ipairs(names) do
    local tok = redis.call('GET', MDM_KEY_DEP .. name .. ':tokens')
    if tok then
        local okj, j = pcall(cjson.decode, tok)
        local t = okj and type(j) == 'table' and rfc3339(j.access_token_expiry)
        if t then
            sample('ngx_mdm_dep_token_expiry_timestamp_seconds',
                   {'dep_name', name}, t)
        end
    end
    status[name] = redis.call('HMGET', MDM_KEY_DEP .. name .. ':status',
                              'last_sync_at', 'devices', 'stopped')
end
family('ngx_mdm_dep_last_sync_timestamp_seconds', 'gauge',
       'When each DEP name last synced.')
for _, name in ipairs(names) do
    if status[name][1] then
        sample('ngx_mdm_dep_last_sync_timestamp_seconds', {'dep_name', name},
               string.format('%.3f', tonumber(status[name][1]) / 1000))
    end
end
family('ngx_mdm_dep_devices', 'gauge', 'Devices known for each DEP name.')
for _, name in ipairs(names) do
    sample('ngx_mdm_dep_devices', {'dep_name', name},
           redis.call('ZCARD', MDM_KEY_DEP .. name .. ':serials'))
end
family('ngx_mdm_dep_stopped', 'gauge',
       '1 while a DEP name is stopped for an error the admin must fix.')
for _, name in ipairs(names) do
    sample('ngx_mdm_dep_stopped', {'dep_name', name},
           status[name][3] == '1' and 1 or 0)
end

return out
