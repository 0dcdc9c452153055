-- One bounded step of the DDM fan-out (workers/ddm.c): tells the
-- enrollments whose DeclarationsToken a settled change may have altered.
-- mdm:ddm:dirty holds "d:ID" (a declaration edited), "s:SET" (a set's
-- declarations changed) and "e:ENROLLMENT" (its sets changed), scored by
-- the time of the last change: a member is taken once it has been quiet
-- for the settle time, so a burst of API calls makes one command per
-- enrollment.  A set is walked with SSCAN, its cursor kept in mdm:ddm:scan
-- between steps (the API deletes it when the set changes again: the walk
-- restarts).  An enrollment whose token is the one it was last told gets
-- nothing (mdm_ddm_changed).
-- ARGV: 1 now (ms), 2 settle (ms), 3 budget (enrollments looked at, at
--       most, about), 4 how long the command records live (s).
-- Returns {enrollments looked at, commands queued, ready members left}.

local now, settle = ARGV[1], tonumber(ARGV[2])
local budget, ttl = tonumber(ARGV[3]), ARGV[4]
local ready = tonumber(now) - settle
local done, told = 0, 0
-- within one step the sets do not change: their tokens are looked up once
local cache = {}

local function tell(id)
    local did, suffix = mdm_split_id(id)
    if mdm_ddm_changed(did, suffix, id, now, ttl, cache) then
        told = told + 1
    end
    done = done + 1
end

local members = redis.call('ZRANGEBYSCORE', MDM_KEY_DDM_DIRTY, '-inf', ready,
                           'WITHSCORES', 'LIMIT', 0, 100)

for i = 1, #members, 2 do
    if done >= budget then break end
    local m, score = members[i], members[i + 1]
    local kind, name = string.sub(m, 1, 1), string.sub(m, 3)
    if kind == 'd' then
        -- a declaration: the sets holding it, as settled as it is (GT: a
        -- set changed since keeps its later time)
        for _, s in ipairs(redis.call('SMEMBERS',
                                      MDM_KEY_DDM_DECLSETS .. name)) do
            redis.call('ZADD', MDM_KEY_DDM_DIRTY, 'GT', score, 's:' .. s)
            redis.call('HDEL', MDM_KEY_DDM_SCAN, s)
        end
        redis.call('ZREM', MDM_KEY_DDM_DIRTY, m)
        done = done + 1
    elseif kind == 'e' then
        tell(name)
        redis.call('ZREM', MDM_KEY_DDM_DIRTY, m)
    elseif kind == 's' then
        local cursor = redis.call('HGET', MDM_KEY_DDM_SCAN, name) or '0'
        local r = redis.call('SSCAN', MDM_KEY_DDM_SETENRS .. name, cursor,
                             'COUNT', math.max(budget - done, 10))
        for _, id in ipairs(r[2]) do tell(id) end
        if r[1] == '0' then
            redis.call('ZREM', MDM_KEY_DDM_DIRTY, m)
            redis.call('HDEL', MDM_KEY_DDM_SCAN, name)
        else
            redis.call('HSET', MDM_KEY_DDM_SCAN, name, r[1])
        end
    else
        redis.call('ZREM', MDM_KEY_DDM_DIRTY, m)
    end
end

return {done, told, redis.call('ZCOUNT', MDM_KEY_DDM_DIRTY, '-inf', ready)}
