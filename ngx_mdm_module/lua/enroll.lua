-- An enrollment profile is about to be generated (ngx_http_mdm_enroll.c):
-- pick the topic, store the profile's one-time SCEP challenge and, for ADE,
-- the device's MachineInfo.  One round trip; nothing is written when there
-- is no push certificate, so a refused profile leaves no challenge behind.
--
-- ARGV: 1 now (ms), 2 one-time challenge ('' with a static one),
-- 3 its TTL (s), 4 MachineInfo TTL (s), 5 SERIAL ('' without MachineInfo),
-- 6.. field/value pairs of the MachineInfo.
-- Returns {'ok', topic} or {'err', reason}.

local now, challenge, ttl, info_ttl, serial =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

-- The topic of the newest uploaded push certificate: mdm:topics holds the
-- uploaded certificates' topics (api's PUT /v1/pushcert, contract C2), and a
-- forced replacement leaves more than one there.
local topic, newest
for _, t in ipairs(redis.call('SMEMBERS', MDM_KEY_TOPICS)) do
    local u = tonumber(redis.call('HGET', MDM_KEY_PUSHCERT .. t,
                                  'updated_at') or '')
    if u and (newest == nil or u > newest) then
        topic, newest = t, u
    end
end

if topic == nil then
    return {'err', 'no push certificate'}
end

-- consumed with GETDEL by the SCEP CA on the first certificate (E1)
if challenge ~= '' then
    redis.call('SET', MDM_KEY_SCEP_CHALLENGE .. challenge, now, 'EX', ttl)
end

-- ADE: what the device said about itself, kept info_ttl after its last
-- profile request
if serial ~= '' then
    local key = MDM_KEY_MACHINEINFO .. serial
    local f = {'updated_at', now}
    for i = 6, #ARGV do f[#f + 1] = ARGV[i] end
    redis.call('HSET', key, unpack(f))
    redis.call('EXPIRE', key, info_ttl)
end

return {'ok', topic}
