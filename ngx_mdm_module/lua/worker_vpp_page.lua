-- mdm-worker, VPP: one page of a walk, or one bounded step around it.
-- ARGV: 1 name, 2 kind, 3 first (0|1), 4 last (0|1), 5 versionId, 6 now
-- (ms), 7 next sync (ms), then pairs: assets: adamId, Apple's item JSON;
-- full|delta: adamId, serial.
--   assets: written aside, swapped in by the last page (RENAME)
--   delta:  added to the live sets; the last page records the version
--   full:   written aside (mdm:vpp:NAME:new:...)
--   clear:  before a full walk: what a walk cut off left aside goes
--   swap:   after a full walk: the new sets take the old ones' names,
--           then the old ones not in the new walk go; the last step
--           records the version
-- clear and swap do at most STEP keys per call and return how much is
-- left (0: done): a script holds Redis for everyone while it runs, and a
-- location may hold 100,000 licenses.
local n, kind, first, last = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local p = MDM_KEY_VPP .. n .. ':'
local pre = p .. 'new:'        -- a full walk's pages
local idx = p .. 'idx:'        -- the new walk's index while it is swapped
local st = p .. 'status'
local STEP = 500

local function synced()
    redis.call('HSET', st, 'version_id', ARGV[5], 'last_sync_at', ARGV[6],
               'last_result', 'ok', 'next_sync_at', ARGV[7],
               'assignments', redis.call('SCARD', p .. 'serials'))
    redis.call('HDEL', st, 'last_error', 'error_number')
end

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
    return 0
end

if kind == 'clear' then
    for _, a in ipairs(redis.call('SPOP', pre .. 'adams', STEP)) do
        redis.call('DEL', pre .. 'asg:' .. a)
    end
    for _, s in ipairs(redis.call('SPOP', pre .. 'serials', STEP)) do
        redis.call('DEL', pre .. 'sasg:' .. s)
    end
    -- a swap cut off: what it renamed is live, back in the live index
    for _, a in ipairs(redis.call('SPOP', idx .. 'adams', STEP)) do
        redis.call('SADD', p .. 'adams', a)
    end
    for _, s in ipairs(redis.call('SPOP', idx .. 'serials', STEP)) do
        redis.call('SADD', p .. 'serials', s)
    end
    return redis.call('SCARD', pre .. 'adams') + redis.call('SCARD', pre .. 'serials')
        + redis.call('SCARD', idx .. 'adams') + redis.call('SCARD', idx .. 'serials')
end

if kind == 'swap' then
    local left = STEP
    -- 1: each new set replaces the old one of its name (RENAME: atomic)
    for _, a in ipairs(redis.call('SPOP', pre .. 'adams', left)) do
        redis.call('RENAME', pre .. 'asg:' .. a, p .. 'asg:' .. a)
        redis.call('SADD', idx .. 'adams', a)
        left = left - 1
    end
    if left > 0 then
        for _, s in ipairs(redis.call('SPOP', pre .. 'serials', left)) do
            redis.call('RENAME', pre .. 'sasg:' .. s, p .. 'sasg:' .. s)
            redis.call('SADD', idx .. 'serials', s)
            left = left - 1
        end
    end
    if redis.call('SCARD', pre .. 'adams') + redis.call('SCARD', pre .. 'serials') > 0 then
        return 1
    end
    -- 2: the old sets the new walk did not see go
    if left > 0 then
        for _, a in ipairs(redis.call('SPOP', p .. 'adams', left)) do
            if redis.call('SISMEMBER', idx .. 'adams', a) == 0 then
                redis.call('DEL', p .. 'asg:' .. a)
            end
            left = left - 1
        end
    end
    if left > 0 then
        for _, s in ipairs(redis.call('SPOP', p .. 'serials', left)) do
            if redis.call('SISMEMBER', idx .. 'serials', s) == 0 then
                redis.call('DEL', p .. 'sasg:' .. s)
            end
            left = left - 1
        end
    end
    if redis.call('SCARD', p .. 'adams') + redis.call('SCARD', p .. 'serials') > 0 then
        return 1
    end
    -- 3: the new index is the index
    if redis.call('EXISTS', idx .. 'adams') == 1 then
        redis.call('RENAME', idx .. 'adams', p .. 'adams')
    end
    if redis.call('EXISTS', idx .. 'serials') == 1 then
        redis.call('RENAME', idx .. 'serials', p .. 'serials')
    end
    redis.call('HSET', st, 'full_sync_at', ARGV[6])
    synced()
    return 0
end

local into = (kind == 'full') and pre or p
for i = 8, #ARGV, 2 do
    local a, s = ARGV[i], ARGV[i + 1]
    redis.call('SADD', into .. 'asg:' .. a, s)
    redis.call('SADD', into .. 'sasg:' .. s, a)
    redis.call('SADD', into .. 'adams', a)
    redis.call('SADD', into .. 'serials', s)
end
if kind == 'delta' and last == '1' then synced() end
return 0
