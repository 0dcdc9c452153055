-- mdm-worker, VPP: one tick (every 0.25 s).  ARGV: worker id, lease (ms),
-- jobs wanted, a random UUID (our mdmInfo id if there is none yet), fresh
-- ("1": this process was not the leader at its last tick, so the jobs
-- another run left in mdm:vpp:running are taken up again).
-- One worker at a time runs the locations: the holder of
-- MDM_KEY_VPP_LEADER.  Returns {0} to the others; to the holder
-- {1, mdmInfo id, {names to sync now}, {jobs}, {per name: name, token,
-- base_url, stopped, version_id, token_warned_at, token_expiry}}.
-- Lease "0": the worker stops, it gives the lease up if it holds it.
local wid, lease, want = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not mdm_lease(MDM_KEY_VPP_LEADER, wid, lease) then return {0} end

redis.call('HSETNX', MDM_KEY_VPP_MDMINFO, 'id', ARGV[4])
redis.call('HSETNX', MDM_KEY_VPP_MDMINFO, 'name', 'ngx_mdm')
local id = redis.call('HGET', MDM_KEY_VPP_MDMINFO, 'id')

local now = redis.call('SPOP', MDM_KEY_VPP_SYNCNOW, 100)
local jobs = {}
if ARGV[5] == '1' then
    -- the previous leader's unfinished jobs (bounded: at most the list's)
    jobs = redis.call('HVALS', MDM_KEY_VPP_RUNNING)
end
if want > 0 then
    for _, j in ipairs(redis.call('LPOP', MDM_KEY_VPP_JOBS, want) or {}) do
        local ok, o = pcall(cjson.decode, j)
        if ok and type(o) == 'table' and type(o.id) == 'string' then
            redis.call('HSET', MDM_KEY_VPP_RUNNING, o.id, j)
        end
        jobs[#jobs + 1] = j
    end
end

local function s(v) return v or '' end
local names = redis.call('SRANDMEMBER', MDM_KEY_VPP_NAMES, 1000)
local out = {}
for _, n in ipairs(names) do
    local p = MDM_KEY_VPP .. n .. ':'
    local st = redis.call('HMGET', p .. 'status', 'stopped', 'version_id',
                          'token_warned_at', 'token_expiry')
    out[#out + 1] = {n, s(redis.call('GET', p .. 'token')),
        s(redis.call('HGET', p .. 'config', 'base_url')),
        s(st[1]), s(st[2]), s(st[3]), s(st[4])}
end
return {1, id, now, jobs, out}
