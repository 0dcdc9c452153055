-- mdm-worker, VPP: the "token" job.
-- ARGV[1] "prep": 2 name, 3 a random token: returns {notify_url,
--   notify_token, base_url} (the notify token made once per location).
-- ARGV[1] "store": 2 name, 3 sToken, 4 org, 5 location name, 6 expiry
--   (unix s), 7 now (ms), 8 reply id, 9 reply JSON: the validated token,
--   its status (the stop cleared), the location named, the reply.
local op, n = ARGV[1], ARGV[2]
local p = MDM_KEY_VPP .. n .. ':'
if op == 'prep' then
    -- a location not yet in mdm:vpp:names has its config read here
    local c = redis.call('HMGET', p .. 'config', 'notify_url', 'base_url')
    local url = c[1] or ''
    if url == '' then return {'', '', c[2] or ''} end
    redis.call('SET', p .. 'notify_token', ARGV[3], 'NX')
    return {url, redis.call('GET', p .. 'notify_token'), c[2] or ''}
end
redis.call('SET', p .. 'token', ARGV[3])
redis.call('HDEL', p .. 'status', 'stopped', 'stop_reason', 'token_warned_at',
           'version_id')
redis.call('HSET', p .. 'status', 'org', ARGV[4], 'location', ARGV[5],
           'token_expiry', ARGV[6], 'token_at', ARGV[7])
redis.call('SADD', MDM_KEY_VPP_NAMES, n)
redis.call('SET', MDM_KEY_VPP_REPLY .. ARGV[8], ARGV[9], 'EX', 120)
redis.call('HDEL', MDM_KEY_VPP_RUNNING, ARGV[8])
return 1
