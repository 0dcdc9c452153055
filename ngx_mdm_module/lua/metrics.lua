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

-- per worker (stats.c and worker_result.lua count, mdm:stats:worker:ID);
-- the zset lists the workers heard from within stats_retention
local wfam = {
    {'ngx_mdm_worker_apns_dead_tokens_total', 'dead_tokens',
     'Push tokens marked dead after an APNs 410, by worker.'},
    {'ngx_mdm_worker_apns_retries_total', 'push_retries',
     'Push attempts retried (connection failures, 429, 5xx), by worker.'},
    {'ngx_mdm_worker_apns_tls_failures_total', 'tls_failures',
     'TLS failures to APNs (push certificate refused?), by worker.'},
    {'ngx_mdm_worker_webhook_deliveries_total', 'webhook_delivered',
     'Events delivered to the webhook receiver (2xx), by worker.'},
    {'ngx_mdm_worker_webhook_failures_total', 'webhook_failed',
     'Webhook requests that failed (retried later), by worker.'},
    {'ngx_mdm_worker_webhook_dead_letters_total', 'webhook_dead',
     'Events moved to mdm:webhooks:dead after their last retry, by worker.'},
}
local wids = redis.call('ZRANGE', MDM_KEY_STATS_WORKERS, 0, 999)
local wstats = {}
for _, id in ipairs(wids) do
    local h, t = redis.call('HGETALL', MDM_KEY_STATS_WORKER .. id), {}
    for i = 1, #h, 2 do t[h[i]] = h[i + 1] end
    -- expired (stats_retention) before a live worker's beat pruned the id
    if #h > 0 then wstats[#wstats + 1] = {id, t} end
end
family('ngx_mdm_worker_apns_pushes_total', 'counter',
       'APNs push outcomes, by worker and result.')
for _, w in ipairs(wstats) do
    local fields = {}
    for f in pairs(w[2]) do
        if f:sub(1, 5) == 'push_' and f ~= 'push_retries' then
            fields[#fields + 1] = f
        end
    end
    table.sort(fields)
    for _, f in ipairs(fields) do
        sample('ngx_mdm_worker_apns_pushes_total',
               {'worker', w[1], 'result', f:sub(6)}, w[2][f])
    end
end
for _, fam in ipairs(wfam) do
    family(fam[1], 'counter', fam[3])
    for _, w in ipairs(wstats) do
        sample(fam[1], {'worker', w[1]}, w[2][fam[2]] or 0)
    end
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
                              'last_sync_at', 'devices', 'stopped', 'syncs',
                              'errors')
end
family('ngx_mdm_dep_last_sync_timestamp_seconds', 'gauge',
       'When each DEP name last synced.')
for _, name in ipairs(names) do
    if status[name][1] then
        sample('ngx_mdm_dep_last_sync_timestamp_seconds', {'dep_name', name},
               string.format('%.3f', tonumber(status[name][1]) / 1000))
    end
end
-- as the worker counted them at its last page (deleted devices it still
-- keeps for a while are not counted)
family('ngx_mdm_dep_devices', 'gauge', 'Devices assigned to each DEP name.')
for _, name in ipairs(names) do
    sample('ngx_mdm_dep_devices', {'dep_name', name}, status[name][2] or 0)
end
family('ngx_mdm_dep_assignments_total', 'counter',
       'Profile assignments by the worker, by DEP name and Apple\'s result.')
for _, name in ipairs(names) do
    local a = redis.call('HMGET', MDM_KEY_DEP .. name .. ':status',
                         'assign_success', 'assign_throttled',
                         'assign_failed', 'assign_not_accessible')
    for i, r in ipairs({'success', 'throttled', 'failed', 'not_accessible'}) do
        sample('ngx_mdm_dep_assignments_total',
               {'dep_name', name, 'result', r}, a[i] or 0)
    end
end
family('ngx_mdm_dep_syncs_total', 'counter',
       'Fetches and syncs the worker completed, by DEP name.')
for _, name in ipairs(names) do
    sample('ngx_mdm_dep_syncs_total', {'dep_name', name}, status[name][4] or 0)
end
family('ngx_mdm_dep_errors_total', 'counter',
       'Calls to Apple\'s DEP service that failed (each retried or stopped), '
       .. 'by DEP name.')
for _, name in ipairs(names) do
    sample('ngx_mdm_dep_errors_total', {'dep_name', name}, status[name][5] or 0)
end
family('ngx_mdm_dep_stopped', 'gauge',
       '1 while a DEP name is stopped for an error the admin must fix.')
for _, name in ipairs(names) do
    sample('ngx_mdm_dep_stopped', {'dep_name', name},
           status[name][3] == '1' and 1 or 0)
end

-- VPP, per location (contract V1: the worker's status hash; token_expiry
-- in unix seconds)
family('ngx_mdm_vpp_token_expiry_timestamp_seconds', 'gauge',
       'Expiry of each VPP location\'s content token.')
local vnames = redis.call('SMEMBERS', MDM_KEY_VPP_NAMES)
local vstatus = {}
for _, name in ipairs(vnames) do
    vstatus[name] = redis.call('HMGET', MDM_KEY_VPP .. name .. ':status',
                               'token_expiry', 'stopped')
    local t = tonumber(vstatus[name][1])
    if t then
        sample('ngx_mdm_vpp_token_expiry_timestamp_seconds',
               {'vpp_name', name}, string.format('%d', t))
    end
end
family('ngx_mdm_vpp_stopped', 'gauge',
       '1 while a VPP location is stopped for an error the admin must fix.')
for _, name in ipairs(vnames) do
    sample('ngx_mdm_vpp_stopped', {'vpp_name', name},
           vstatus[name][2] == '1' and 1 or 0)
end

return out
