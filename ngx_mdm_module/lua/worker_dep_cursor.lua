-- mdm-worker, DEP: EXPIRED_CURSOR or INVALID_CURSOR: the cursor is
-- dropped and the next cycle fetches everything again.  ARGV: name, now,
-- why.
local p = MDM_KEY_DEP .. ARGV[1] .. ':'
redis.call('DEL', p .. 'cursor')
redis.call('HSET', p .. 'status', 'phase', 'fetch', 'last_error', ARGV[3],
           'last_error_at', ARGV[2])
return 1
