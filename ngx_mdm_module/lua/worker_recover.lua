-- mdm-worker: puts back the processing lists of workers whose heartbeat
-- expired, and this worker's own (ARGV[1]: a killed predecessor's).
local moved, cursor = 0, '0'
local plen = #MDM_KEY_PUSH_PROC
repeat
    local r = redis.call('SCAN', cursor, 'MATCH', MDM_KEY_PUSH_PROC .. '*',
                         'COUNT', 100)
    cursor = r[1]
    for _, k in ipairs(r[2]) do
        if k == ARGV[1] or redis.call('EXISTS', MDM_KEY_WORKER
                .. string.sub(k, plen + 1)) == 0 then
            while redis.call('LMOVE', k, MDM_KEY_PUSH, 'LEFT', 'RIGHT') do
                moved = moved + 1
            end
        end
    end
until cursor == '0'
return moved
