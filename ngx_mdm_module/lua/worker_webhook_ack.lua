-- mdm-worker, webhooks: acknowledges the delivered (or dead-lettered)
-- entries ARGV, then trims MDM_KEY_EVENTS up to the oldest entry not yet
-- delivered (contract C4): the oldest pending in the group "webhooks", or,
-- with none pending, whatever follows its last-delivered-id (the entries
-- up to it were all acknowledged).  Never past an undelivered entry.
-- Returns how many were acknowledged.
local n = redis.call('XACK', MDM_KEY_EVENTS, 'webhooks', unpack(ARGV))
local p = redis.call('XPENDING', MDM_KEY_EVENTS, 'webhooks')
if p[2] then
    redis.call('XTRIM', MDM_KEY_EVENTS, 'MINID', p[2])
    return n
end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', MDM_KEY_EVENTS)) do
    local name, last
    for i = 1, #g, 2 do
        if g[i] == 'name' then name = g[i + 1]
        elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == 'webhooks' and last then
        redis.call('XTRIM', MDM_KEY_EVENTS, 'MINID', last)
        redis.call('XDEL', MDM_KEY_EVENTS, last)
    end
end
return n
