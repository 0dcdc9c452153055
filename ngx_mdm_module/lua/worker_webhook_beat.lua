-- mdm-worker, webhooks, every heartbeat: the subscription key for the
-- module (contract C3), then the lease on reading new events, kept or
-- taken when free.  ARGV: 1 want value (all | noidle), 2 its TTL (ms),
-- 3 worker id, 4 lease TTL (ms).  Returns 1 when this worker holds the
-- lease.
redis.call('SET', MDM_KEY_WEBHOOKS_WANT, ARGV[1], 'PX', ARGV[2])
local l = redis.call('GET', MDM_KEY_WEBHOOKS_LEADER)
if l == ARGV[3] then
    redis.call('PEXPIRE', MDM_KEY_WEBHOOKS_LEADER, ARGV[4])
    return 1
end
if not l then
    redis.call('SET', MDM_KEY_WEBHOOKS_LEADER, ARGV[3], 'PX', ARGV[4])
    return 1
end
return 0
