-- mdm-worker, VPP: one page of a walk.
-- ARGV: 1 name, 2 kind (assets|full|delta), 3 first (0|1), 4 last (0|1),
-- 5 versionId, 6 now (ms), 7 next sync (ms), then pairs: assets: adamId,
-- Apple's item JSON; full|delta: adamId, serial.
-- Assets and a full walk of assignments are written aside and swapped in
-- on the last page (readers never see half a list; what is gone at Apple
-- goes); a delta adds to the sets in place (V1).
local n, kind, first, last = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local p = MDM_KEY_VPP .. n .. ':'
local st = p .. 'status'

if kind == 'assets' then
    local tmp = p .. 'assets:new'
    if first == '1' then redis.call('DEL', tmp) end
    for i = 8, #ARGV, 2 do redis.call('HSET', tmp, ARGV[i], ARGV[i + 1]) end
    if last == '1' then
        if redis.call('EXISTS', tmp) == 1 then
            redis.call('RENAME', tmp, p .. 'assets')
        else
            redis.call('DEL', p .. 'assets')
        end
        redis.call('HSET', st, 'assets', redis.call('HLEN', p .. 'assets'))
    end
    return 1
end

local pre = (kind == 'full') and (p .. 'new:') or p
if kind == 'full' and first == '1' then
    for _, a in ipairs(redis.call('SMEMBERS', pre .. 'adams')) do
        redis.call('DEL', pre .. 'asg:' .. a)
    end
    for _, s in ipairs(redis.call('SMEMBERS', pre .. 'serials')) do
        redis.call('DEL', pre .. 'sasg:' .. s)
    end
    redis.call('DEL', pre .. 'adams', pre .. 'serials')
end
for i = 8, #ARGV, 2 do
    local a, s = ARGV[i], ARGV[i + 1]
    redis.call('SADD', pre .. 'asg:' .. a, s)
    redis.call('SADD', pre .. 'sasg:' .. s, a)
    redis.call('SADD', pre .. 'adams', a)
    redis.call('SADD', pre .. 'serials', s)
end
if last ~= '1' then return 1 end

if kind == 'full' then
    -- the old sets go, the new ones take their names
    for _, a in ipairs(redis.call('SMEMBERS', p .. 'adams')) do
        redis.call('DEL', p .. 'asg:' .. a)
    end
    for _, s in ipairs(redis.call('SMEMBERS', p .. 'serials')) do
        redis.call('DEL', p .. 'sasg:' .. s)
    end
    redis.call('DEL', p .. 'adams', p .. 'serials')
    for _, a in ipairs(redis.call('SMEMBERS', pre .. 'adams')) do
        redis.call('RENAME', pre .. 'asg:' .. a, p .. 'asg:' .. a)
    end
    for _, s in ipairs(redis.call('SMEMBERS', pre .. 'serials')) do
        redis.call('RENAME', pre .. 'sasg:' .. s, p .. 'sasg:' .. s)
    end
    if redis.call('EXISTS', pre .. 'adams') == 1 then
        redis.call('RENAME', pre .. 'adams', p .. 'adams')
        redis.call('RENAME', pre .. 'serials', p .. 'serials')
    end
    redis.call('HSET', st, 'full_sync_at', ARGV[6])
end
redis.call('HSET', st, 'version_id', ARGV[5], 'last_sync_at', ARGV[6],
           'last_result', 'ok', 'next_sync_at', ARGV[7],
           'assignments', redis.call('SCARD', p .. 'serials'))
redis.call('HDEL', st, 'last_error', 'error_number')
return 1
