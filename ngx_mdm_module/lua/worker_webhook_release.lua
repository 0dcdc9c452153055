-- mdm-worker, webhooks, at exit: gives the lease up if it holds it, so a
-- standby worker takes over at its next heartbeat.  ARGV: 1 worker id.
if redis.call('GET', MDM_KEY_WEBHOOKS_LEADER) == ARGV[1] then
    redis.call('DEL', MDM_KEY_WEBHOOKS_LEADER)
end
return 0
