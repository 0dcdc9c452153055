-- mdm-worker, VPP: a failed call.  ARGV: name, now (ms), error, Apple's
-- errorNumber ("" none), stop (0|1), events MAXLEN.  Recorded in the
-- status hash (stop: stopped=1 and stop_reason until the next "token" job,
-- V4) and as a vpp.error event (V5).
local n, now, err, num, stop = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local st = MDM_KEY_VPP .. n .. ':status'
redis.call('HSET', st, 'last_result', 'error', 'last_error', err,
           'error_number', num, 'last_error_at', now)
if stop == '1' then
    redis.call('HSET', st, 'stopped', '1', 'stop_reason', err)
end
mdm_xadd(MDM_KEY_EVENTS, ARGV[6], 'type', 'vpp.error', 'id', 'vpp:' .. n,
         'vpp_name', n, 'install_id', '', 'time', now, 'error', err,
         'error_number', num, 'stopped', stop)
return 1
