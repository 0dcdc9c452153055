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

-- the two indexes of a walk and the prefix of their sets' keys
local INDEXES = {{'adams', 'asg:'}, {'serials', 'sasg:'}}

-- SPOP at most left members of an index, f on each: what is left to do
local function each_popped(index, left, f)
    if left <= 0 then return left end
    for _, m in ipairs(redis.call('SPOP', index, left)) do
        f(m)
        left = left - 1
    end
    return left
end

local function indexed(prefix)
    return redis.call('SCARD', prefix .. 'adams')
        + redis.call('SCARD', prefix .. 'serials')
end

if kind == 'clear' then
    for _, ix in ipairs(INDEXES) do
        each_popped(pre .. ix[1], STEP, function (m)
            redis.call('DEL', pre .. ix[2] .. m)
        end)
    end
    -- a swap cut off: what it renamed is live, back in the live index
    for _, ix in ipairs(INDEXES) do
        each_popped(idx .. ix[1], STEP, function (m)
            redis.call('SADD', p .. ix[1], m)
        end)
    end
    return indexed(pre) + indexed(idx)
end

if kind == 'swap' then
    local left = STEP
    -- 1: each new set replaces the old one of its name (RENAME: atomic)
    for _, ix in ipairs(INDEXES) do
        left = each_popped(pre .. ix[1], left, function (m)
            redis.call('RENAME', pre .. ix[2] .. m, p .. ix[2] .. m)
            redis.call('SADD', idx .. ix[1], m)
        end)
    end
    if indexed(pre) > 0 then return 1 end
    -- 2: the old sets the new walk did not see go
    for _, ix in ipairs(INDEXES) do
        left = each_popped(p .. ix[1], left, function (m)
            if redis.call('SISMEMBER', idx .. ix[1], m) == 0 then
                redis.call('DEL', p .. ix[2] .. m)
            end
        end)
    end
    if indexed(p) > 0 then return 1 end
    -- 3: the new index is the index
    for _, ix in ipairs(INDEXES) do
        if redis.call('EXISTS', idx .. ix[1]) == 1 then
            redis.call('RENAME', idx .. ix[1], p .. ix[1])
        end
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
