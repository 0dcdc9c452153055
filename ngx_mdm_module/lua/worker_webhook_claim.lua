-- mdm-worker, webhooks, run by the lease holder: takes over the entries of
-- dead consumers of the group "webhooks" (dead: no heartbeat key
-- MDM_KEY_WORKER .. name; a live worker in backoff looks idle too but
-- still owns its entries), idle at least ARGV[3] ms, up to ARGV[2], oldest
-- first, and forgets dead consumers left with nothing.  ARGV: 1 worker id,
-- 2 count, 3 min idle (ms).  Returns {entries other consumers still hold,
-- claimed entries [[id, [field, value, ...]], ...], live other consumers}.
local me, count, idle = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local held, out, live = 0, {}, 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', MDM_KEY_EVENTS,
                              'webhooks')) do
    local name, pending
    for i = 1, #c, 2 do
        if c[i] == 'name' then name = c[i + 1]
        elseif c[i] == 'pending' then pending = c[i + 1] end
    end
    if name ~= me then
        local claimed = 0
        if redis.call('EXISTS', MDM_KEY_WORKER .. name) == 1 then
            -- alive: its entries are its own
            live = live + 1
        elseif pending == 0 then
            redis.call('XGROUP', 'DELCONSUMER', MDM_KEY_EVENTS, 'webhooks',
                       name)
        elseif #out < count then
            local ids = {}
            for _, p in ipairs(redis.call('XPENDING', MDM_KEY_EVENTS,
                    'webhooks', 'IDLE', idle, '-', '+', count - #out,
                    name)) do
                ids[#ids + 1] = p[1]
            end
            if #ids > 0 then
                for _, e in ipairs(redis.call('XCLAIM', MDM_KEY_EVENTS,
                        'webhooks', me, idle, unpack(ids))) do
                    if e then out[#out + 1] = e end
                end
                claimed = #ids
            end
        end
        held = held + pending - claimed
    end
end
return {held, out, live}
