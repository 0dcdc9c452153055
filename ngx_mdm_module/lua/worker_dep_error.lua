-- mdm-worker, DEP: a failed call.  ARGV: name, now (ms), error, stop
-- (0|1), events MAXLEN.  Recorded in the status hash (stop: stopped=1 and
-- stop_reason, until a token PUT clears them, D1) and as a dep.error event.
local n, now, err, stop = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local st = MDM_KEY_DEP .. n .. ':status'
redis.call('HSET', st, 'last_result', 'error', 'last_error', err,
           'last_error_at', now)
-- for mdm_metrics (ngx_mdm_dep_errors_total)
redis.call('HINCRBY', st, 'errors', 1)
if stop == '1' then
    -- phase is kept: a fetch stopped half way goes on after the token PUT
    redis.call('HSET', st, 'stopped', '1', 'stop_reason', err)
end
mdm_xadd(MDM_KEY_EVENTS, ARGV[5], 'type', 'dep.error', 'id', 'dep:' .. n,
         'dep_name', n, 'serial', '', 'time', now, 'error', err,
         'stopped', stop)
return 1
