-- mdm-worker: one step of a scan for the processing lists of workers that
-- predate mdm:push:procs, to register them there (then recovery sees
-- them).  Run at start, a step at a time.  ARGV[1]: the cursor.  Returns
-- the next one.
local r = redis.call('SCAN', ARGV[1], 'MATCH', MDM_KEY_PUSH_PROC .. '*',
                     'COUNT', 1000)
for _, k in ipairs(r[2]) do redis.call('SADD', MDM_KEY_PUSH_PROCS, k) end
return r[1]
