-- mdm-worker: puts back on mdm:push the jobs nobody works on any more,
-- through the pending set (C1: an id already waiting there is not queued
-- twice):
--   - the processing lists of workers whose heartbeat has expired (listed
--     in mdm:push:procs);
--   - with ARGV[2] == '1', this worker's own list (ARGV[1]) except the
--     jobs it has in flight (ARGV[3..]): what a killed predecessor with
--     the same worker_id left, or what was taken while a reply was lost.
--     Jobs in flight are never put back: that would push them twice.
-- Registers ARGV[1] in mdm:push:procs.  Returns how many were put back.
local own = ARGV[1]
local moved = 0

-- an id may be left in the pending set without being in the list (its
-- taker lost the reply of its BLMOVE): then it is queued too
local function requeue(id)
    -- the look for it is bounded (the newest 1,000, where a re-enqueue
    -- lands): past that, at worst one more push
    if redis.call('SADD', MDM_KEY_PUSH_PENDING, id) == 1
       or not redis.call('LPOS', MDM_KEY_PUSH, id, 'RANK', -1,
                         'MAXLEN', 1000) then
        redis.call('RPUSH', MDM_KEY_PUSH, id)
    end
    moved = moved + 1
end

redis.call('SADD', MDM_KEY_PUSH_PROCS, own)

if ARGV[2] == '1' then
    local keep = {}
    for i = 3, #ARGV do keep[ARGV[i]] = (keep[ARGV[i]] or 0) + 1 end
    local ids = redis.call('LRANGE', own, 0, -1)
    redis.call('DEL', own)
    for _, id in ipairs(ids) do
        if (keep[id] or 0) > 0 then
            keep[id] = keep[id] - 1
            redis.call('RPUSH', own, id)
        else
            requeue(id)
        end
    end
end

local plen = #MDM_KEY_PUSH_PROC
for _, k in ipairs(redis.call('SMEMBERS', MDM_KEY_PUSH_PROCS)) do
    if k ~= own and redis.call('EXISTS',
            MDM_KEY_WORKER .. string.sub(k, plen + 1)) == 0 then
        for _, id in ipairs(redis.call('LRANGE', k, 0, -1)) do
            requeue(id)
        end
        redis.call('DEL', k)
        redis.call('SREM', MDM_KEY_PUSH_PROCS, k)
    end
end

return moved
