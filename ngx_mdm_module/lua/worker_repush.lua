-- mdm-worker: one step (run every second) of the re-push schedule:
-- enrollments with queued commands whose last push is older than the
-- interval, doubled for every push the device did not answer (up to 64
-- times), are pushed again.  A step scans enough keys for a pass over the
-- whole keyspace to take half the interval, and at most 100,000, so Redis
-- is never held up for long.  ARGV: cursor, now (ms), interval (ms).
-- Returns the next cursor.
local now, every = tonumber(ARGV[2]), tonumber(ARGV[3])
local step = math.min(100000, math.max(500,
    math.ceil(redis.call('DBSIZE') * 2000 / every)))
-- 'mdm:q*': the queues (mdm:q:) and the priority lanes (mdm:qp:)
local queues = string.sub(MDM_KEY_QUEUE, 1, -2) .. '*'
local r = redis.call('SCAN', ARGV[1], 'MATCH', queues, 'COUNT', step)

-- Whether q holds a command that still exists at its head.  Entries whose
-- command is gone (deleted, or expired with mdm_result_ttl) leave from the
-- head, as connect.lua drops them, a few per step: a device that never
-- checks in again is not pushed forever for commands that no longer exist.
local function live(q)
    for _ = 1, 16 do
        local u = redis.call('LINDEX', q, 0)
        if not u then return false end
        if redis.call('EXISTS', MDM_KEY_CMD .. u) == 1 then return true end
        redis.call('LPOP', q)
    end
    return redis.call('LLEN', q) > 0
end

for _, q in ipairs(r[2]) do
    local did, sfx = string.match(q, '^mdm:qp?:{([^}]*)}(.*)$')
    if did and live(q) then
        local k = mdm_key(MDM_KEY_ENR, did, sfx)
        local e = redis.call('HMGET', k, 'enabled', 'push_at', 'last_seen',
                             'repushes')
        if e[1] == '1' then
            local at, seen = tonumber(e[2] or '0'), tonumber(e[3] or '0')
            local n = tonumber(e[4] or '0')
            if seen > at then n = 0 end
            -- one pending push per enrollment (C1)
            if now - at >= every * 2 ^ math.min(n, 6)
               and redis.call('SADD', MDM_KEY_PUSH_PENDING, did .. sfx) == 1
            then
                redis.call('RPUSH', MDM_KEY_PUSH, did .. sfx)
                redis.call('HSET', k, 'repushes', n + 1, 'push_at', now)
            end
        end
    end
end
return r[1]
