-- mdm-worker, DEP: auto-assign batches.  ARGV: 1 name, 2 now (ms), 3 what:
--   take N        up to N due serials move from the queue (zset, score =
--                 when due) to "assigning" (serial -> profile): returns
--                 {profile, serials...}; {""} without an assigner profile
--   inflight      what a killed worker left in "assigning": {serial,
--                 profile, ...}, to be checked with Apple before anything
--   done THROTTLE_MS BACKOFF_MS BACKOFF_MAX_MS RETRIES PROFILE then
--                 serial, result pairs (SUCCESS, THROTTLED, FAILED,
--                 NOT_ACCESSIBLE, or BACK: put back, due now)
-- Every serial is in exactly one of queue, assigning, or done: a crash
-- never loses one, and none is assigned twice.
local n, now, what = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local p = MDM_KEY_DEP .. n .. ':'
local q, inf = p .. 'assignq', p .. 'assigning'

if what == 'take' then
    local prof = redis.call('HGET', p .. 'assigner', 'profile_uuid') or ''
    if prof == '' then return {''} end
    local out = {prof}
    for _, s in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0,
                                  tonumber(ARGV[4]))) do
        redis.call('ZREM', q, s)
        redis.call('HSET', inf, s, prof)
        out[#out + 1] = s
    end
    return out
end

if what == 'inflight' then
    return redis.call('HGETALL', inf)
end

local throttle, base, max, retries = tonumber(ARGV[4]), tonumber(ARGV[5]),
    tonumber(ARGV[6]), tonumber(ARGV[7])
local prof = ARGV[8]
local c = {0, 0, 0, 0, 0}
for i = 9, #ARGV - 1, 2 do
    local s, r = ARGV[i], ARGV[i + 1]
    local k = p .. 'dev:' .. s
    redis.call('HDEL', inf, s)
    local alive = redis.call('EXISTS', k) == 1
                  and not redis.call('ZSCORE', p .. 'gone', s)
    if r == 'BACK' then
        if alive then redis.call('ZADD', q, now, s) end
        c[5] = c[5] + 1
    elseif alive then
        redis.call('HSET', k, 'assign_result', r, 'assign_at', now)
        if r == 'SUCCESS' then
            redis.call('HDEL', k, 'assign_error', 'assign_attempts')
            redis.call('HSET', MDM_KEY_DEP_PROFILES, s, prof)
            c[1] = c[1] + 1
        elseif r == 'THROTTLED' then
            redis.call('ZADD', q, now + throttle, s)
            redis.call('HSET', k, 'assign_error', 'THROTTLED: retried after '
                       .. math.floor(throttle / 1000) .. ' s')
            c[2] = c[2] + 1
        elseif r == 'NOT_ACCESSIBLE' then
            redis.call('HSET', k, 'assign_error', 'NOT_ACCESSIBLE: not retried')
            c[4] = c[4] + 1
        else
            local a = redis.call('HINCRBY', k, 'assign_attempts', 1)
            if a >= retries then
                redis.call('HSET', k, 'assign_result', 'FAILED', 'assign_error',
                           r .. ': given up after ' .. a .. ' attempts')
            else
                local d = math.min(base * 2 ^ (a - 1), max)
                redis.call('ZADD', q, now + d, s)
                redis.call('HSET', k, 'assign_result', 'FAILED', 'assign_error',
                           r .. ': attempt ' .. a .. ', retried in '
                           .. math.floor(d / 1000) .. ' s')
            end
            c[3] = c[3] + 1
        end
    end
end
-- the outcomes, counted for mdm_metrics in the status hash (D2: the worker
-- owns it, and it goes with the name)
for i, f in ipairs({'assign_success', 'assign_throttled', 'assign_failed',
                    'assign_not_accessible'}) do
    if c[i] > 0 then redis.call('HINCRBY', p .. 'status', f, c[i]) end
end
return c
