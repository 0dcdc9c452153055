-- mdm-worker, DEP: one tick (every 0.2 s).  ARGV: worker id, lease (ms),
-- proxy jobs wanted.  One worker at a time runs the DEP names: the holder
-- of MDM_KEY_DEP_LEADER.  Returns {0} to the others; to the holder
-- {1, {names to sync now}, {proxy jobs}, {per name: name, tokens,
-- base_url, profile_uuid, session, stopped, stop_reason, cursor, phase,
-- first due assignment (ms or ""), assignments left in flight}}.
-- Lease "0": the worker stops, it gives the lease up if it holds it.
local wid, lease, want = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not mdm_lease(MDM_KEY_DEP_LEADER, wid, lease) then return {0} end

local now = redis.call('SPOP', MDM_KEY_DEP_SYNCNOW, 100)
local jobs = {}
if want > 0 then
    jobs = redis.call('LPOP', MDM_KEY_DEP_PROXY, want) or {}
end

local function s(v) return v or '' end
local names = redis.call('SRANDMEMBER', MDM_KEY_DEP_NAMES, 1000)
local out = {}
for _, n in ipairs(names) do
    local p = MDM_KEY_DEP .. n .. ':'
    local st = redis.call('HMGET', p .. 'status', 'stopped', 'stop_reason', 'phase')
    local due = redis.call('ZRANGE', p .. 'assignq', 0, 0, 'WITHSCORES')
    out[#out + 1] = {n, s(redis.call('GET', p .. 'tokens')),
        s(redis.call('HGET', p .. 'config', 'base_url')),
        s(redis.call('HGET', p .. 'assigner', 'profile_uuid')),
        s(redis.call('GET', p .. 'session')), s(st[1]), s(st[2]),
        s(redis.call('GET', p .. 'cursor')), s(st[3]), s(due[2]),
        redis.call('HLEN', p .. 'assigning')}
end
return {1, now, jobs, out}
