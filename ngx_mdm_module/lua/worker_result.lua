-- mdm-worker: records a push's outcome and drops the job.  ARGV: id,
-- processing list, now (ms), apns-id, error, the token a 410 was for,
-- requeue (0|1), counter, this worker's counters hash and its TTL (ms):
-- outcomes are counted fleet-wide and per worker (README, "Metrics").
-- A 410 marks the token dead only if the
-- enrollment still has that token: a TokenUpdate may have replaced it while
-- the push was out (tokens are compared, not clocks).  A requeued id goes
-- back on mdm:push unless it is pending there already (C1).

-- back on mdm:push once (C1).  An id may be left in the pending set
-- without being in the list (its taker lost the reply of its BLMOVE):
-- then it is queued too.
local function requeue(id)
    -- the look for it is bounded (the newest 1,000, where a re-enqueue
    -- lands): past that, at worst one more push
    if redis.call('SADD', MDM_KEY_PUSH_PENDING, id) == 1
       or not redis.call('LPOS', MDM_KEY_PUSH, id, 'RANK', -1,
                         'MAXLEN', 1000) then
        redis.call('RPUSH', MDM_KEY_PUSH, id)
    end
end

local id = ARGV[1]
redis.call('LREM', ARGV[2], 1, id)
if ARGV[7] == '1' then
    requeue(id)
    return 0
end
redis.call('HINCRBY', MDM_KEY_STATS_APNS, ARGV[8], 1)
local wst = ARGV[9]
if wst and wst ~= '' then
    redis.call('HINCRBY', wst, 'push_' .. ARGV[8], 1)
    redis.call('PEXPIRE', wst, ARGV[10])
end
local did, sfx = mdm_split_id(id)
local k = mdm_key(MDM_KEY_ENR, did, sfx)
if redis.call('EXISTS', k) == 0 then return 0 end
if ARGV[5] == '' then
    redis.call('HSET', k, 'push_at', ARGV[3], 'push_result', ARGV[4])
    redis.call('HDEL', k, 'push_error')
    return 1
end
redis.call('HSET', k, 'push_at', ARGV[3], 'push_error', ARGV[5])
if ARGV[6] ~= '' and redis.call('HGET', k, 'token') == ARGV[6] then
    redis.call('HSET', k, 'token_invalid', ARGV[3])
    if wst and wst ~= '' then
        redis.call('HINCRBY', wst, 'dead_tokens', 1)
    end
end
return 1
