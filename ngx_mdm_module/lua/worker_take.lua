-- mdm-worker: moves up to ARGV[1] push jobs from mdm:push (KEYS[1]) to
-- this worker's processing list (KEYS[2]).  Returns the ids moved.  An id
-- off mdm:push is no longer pending: the next enqueue queues it again (C1).
local t = {}
for i = 1, tonumber(ARGV[1]) do
    local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
    if not id then break end
    redis.call('SREM', MDM_KEY_PUSH_PENDING, id)
    t[#t + 1] = id
end
return t
