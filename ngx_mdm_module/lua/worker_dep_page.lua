-- mdm-worker, DEP: one fetch or sync page, atomically: every device is
-- recorded, its event added, its auto-assignment queued, and only then the
-- page's cursor stored.  A worker killed at any moment either did all of
-- it or none of it: the page is asked for again with the old cursor.
-- ARGV: 1 name, 2 now (ms), 3 mode (fetch|sync), 4 the page's cursor,
-- 5 phase after it (fetch|sync|idle), 6 next sync (ms), 7 events MAXLEN,
-- 8 deleted devices kept (ms), 9-12 the cycle's counts so far (added,
-- modified, deleted, queued), 13 Apple's response body.
-- Returns {added, modified, deleted, queued, devices}.
local n, now, mode, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[7]
local p = MDM_KEY_DEP .. n .. ':'
local page = cjson.decode(ARGV[13])
local devs = type(page) == 'table' and page.devices or nil
if type(devs) ~= 'table' then return redis.error_reply('no devices array') end
local prof = redis.call('HGET', p .. 'assigner', 'profile_uuid') or ''
local count = {0, 0, 0, 0}

local function str(v)
    if v == nil or v == cjson.null then return '' end
    if type(v) == 'table' then return cjson.encode(v) end
    return tostring(v)
end

-- "id" keys the webhook lanes: a device's events stay in order
local function event(kind, s, d)
    mdm_xadd(MDM_KEY_EVENTS, maxlen, 'type', 'dep.device.' .. kind,
             'id', 'dep:' .. n .. ':' .. s, 'dep_name', n, 'serial', s,
             'time', ARGV[2],
             'op_type', str(d.op_type), 'op_date', str(d.op_date),
             'profile_status', str(d.profile_status),
             'profile_uuid', str(d.profile_uuid), 'model', str(d.model),
             'device_family', str(d.device_family))
end

-- auto-assign: added; present at a fetch with no profile; modified with
-- its profile empty or removed (moved from another MDM server).  Queued
-- once: a serial in the queue or in flight is not queued again, nor one
-- we assigned this very profile to (a replayed "added").
local function want(k, s, d, op, was)
    if prof == '' or redis.call('ZSCORE', p .. 'assignq', s)
       or redis.call('HEXISTS', p .. 'assigning', s) == 1 then
        return false
    end
    local ps = str(d.profile_status)
    local empty = ps == '' or ps == 'empty' or ps == 'removed'
    if op == 'added' then
        if not empty and str(d.profile_uuid) == prof then return false end
        return not (was and redis.call('HGET', k, 'assign_result') == 'SUCCESS'
                    and redis.call('HGET', MDM_KEY_DEP_PROFILES, s) == prof)
    end
    return empty
end

local function queue(k, s)
    redis.call('ZADD', p .. 'assignq', now, s)
    redis.call('HSET', k, 'assign_result', 'queued')
    count[4] = count[4] + 1
end

for _, d in ipairs(devs) do
    local s = type(d) == 'table' and str(d.serial_number) or ''
    if s ~= '' and #s <= 64 then
        local k = p .. 'dev:' .. s
        local op = mode == 'sync' and str(d.op_type) or ''
        local old = redis.call('HGET', k, 'op_date')
        local gone = redis.call('ZSCORE', p .. 'gone', s)
        local was = redis.call('EXISTS', k) == 1 and not gone
        -- the same serial may come more than once: the latest op_date wins
        if not (op ~= '' and old and old ~= '' and str(d.op_date) < old) then
            local args, changed, cur = {}, not was, {}
            if was then
                local h = redis.call('HGETALL', k)
                for i = 1, #h, 2 do cur[h[i]] = h[i + 1] end
            end
            for f, v in pairs(d) do
                if type(f) == 'string' and f ~= 'response_status' then
                    local sv = str(v)
                    args[#args + 1] = f
                    args[#args + 1] = sv
                    if cur[f] ~= sv then changed = true end
                end
            end
            args[#args + 1] = 'updated_at'
            args[#args + 1] = ARGV[2]
            if op == 'deleted' then
                redis.call('HSET', k, unpack(args))
                redis.call('ZADD', p .. 'serials', now, s)
                redis.call('ZADD', p .. 'gone', now, s)
                redis.call('ZREM', p .. 'assignq', s)
                redis.call('HDEL', MDM_KEY_DEP_PROFILES, s)
                event('deleted', s, d)
                count[3] = count[3] + 1
            elseif changed or op ~= '' then
                if gone then redis.call('ZREM', p .. 'gone', s) end
                redis.call('HSET', k, unpack(args))
                redis.call('ZADD', p .. 'serials', now, s)
                local pu = str(d.profile_uuid)
                if pu ~= '' then
                    redis.call('HSET', MDM_KEY_DEP_PROFILES, s, pu)
                else
                    redis.call('HDEL', MDM_KEY_DEP_PROFILES, s)
                end
                local kind = (op == 'added' or (op == '' and not was))
                             and 'added' or 'modified'
                event(kind, s, d)
                if kind == 'added' then count[1] = count[1] + 1
                else count[2] = count[2] + 1 end
                if want(k, s, d, op, was) then queue(k, s) end
            elseif not redis.call('HGET', k, 'assign_result')
                   and want(k, s, d, op, was) then
                -- fetched again, unchanged, never tried (no profile then)
                queue(k, s)
            end
        end
    end
end

-- deleted devices are kept ARGV[8] ms, then forgotten (100 per page)
local old = redis.call('ZRANGEBYSCORE', p .. 'gone', '-inf',
                       now - tonumber(ARGV[8]), 'LIMIT', 0, 100)
for _, s in ipairs(old) do
    redis.call('ZREM', p .. 'gone', s)
    redis.call('ZREM', p .. 'serials', s)
    redis.call('DEL', p .. 'dev:' .. s)
end

redis.call('SET', p .. 'cursor', ARGV[4])
local total = redis.call('ZCARD', p .. 'serials') - redis.call('ZCARD', p .. 'gone')
local st = p .. 'status'
redis.call('HSET', st, 'cursor_at', ARGV[2], 'phase', ARGV[5],
           'devices', total, 'last_result', 'ok')
if ARGV[5] == 'idle' then
    redis.call('HSET', st, 'last_sync_at', ARGV[2], 'next_sync_at', ARGV[6])
    -- for mdm_metrics (ngx_mdm_dep_syncs_total)
    redis.call('HINCRBY', st, 'syncs', 1)
    local c = {}
    for i = 1, 4 do c[i] = tonumber(ARGV[8 + i]) + count[i] end
    mdm_xadd(MDM_KEY_EVENTS, maxlen, 'type', 'dep.sync', 'id', 'dep:' .. n,
             'dep_name', n, 'serial', '', 'time', ARGV[2], 'mode', mode,
             'added', c[1], 'modified', c[2], 'deleted', c[3], 'queued', c[4],
             'devices', total)
end
count[5] = total
return count
