-- mdm-worker: records a push's outcome and drops the job.  ARGV: id,
-- processing list, now (ms), apns-id, error, 410 timestamp, requeue (0|1),
-- counter.  A 410 marks the token dead only if no TokenUpdate came after
-- its timestamp.
local id = ARGV[1]
redis.call('LREM', ARGV[2], 1, id)
if ARGV[7] == '1' then redis.call('RPUSH', MDM_KEY_PUSH, id) return 0 end
redis.call('HINCRBY', MDM_KEY_STATS_APNS, ARGV[8], 1)
local did, sfx = mdm_split_id(id)
local k = mdm_key(MDM_KEY_ENR, did, sfx)
if redis.call('EXISTS', k) == 0 then return 0 end
if ARGV[5] == '' then
    redis.call('HSET', k, 'push_at', ARGV[3], 'push_result', ARGV[4])
    redis.call('HDEL', k, 'push_error')
    return 1
end
redis.call('HSET', k, 'push_at', ARGV[3], 'push_error', ARGV[5])
if ARGV[6] ~= '' and tonumber(redis.call('HGET', k, 'token_updated_at')
        or '0') < tonumber(ARGV[6]) then
    redis.call('HSET', k, 'token_invalid', ARGV[6])
end
return 1
