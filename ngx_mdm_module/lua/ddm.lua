-- One DeclarativeManagement check-in (ngx_http_mdm_ddm.c), atomically.
-- KEYS: 1 enrollment, 2 device enrollment (certificate bindings),
--       3 certificate index, 4 event stream.
-- ARGV: 1 enrollment id, 2 enrollment type, 3 device id, 4 user suffix,
--       5 cert sha256, 6 cert notAfter, 7 mdm_cert_auth, 8 now (ms),
--       9 raw body, 10 query string, 11 mdm_events_max, then 12 the
--       endpoint:
--   "tokens"                    -> {"ok", DeclarationsToken}
--   "items"                     -> {"ok", DeclarationsToken,
--                                   id, kind, ServerToken, ...}
--   "declaration", 13 kind, 14 identifier
--                               -> {"ok", declaration JSON} or {"ok", ""}
--                                  when the enrollment does not have it
--   "status", 13 FullReport (0|1), 14 n, then n path/value pairs, then
--       m, then m identifier/status-JSON pairs, then error JSON strings
--                               -> {"ok", ""}
-- Each accepted check-in is an event (type DeclarativeManagement, the raw
-- body: webhooks send it as NanoMDM's mdm.DeclarativeManagement).
-- Refusals as lua/checkin.lua: {"err", reason}, {"err", "blocked"},
-- {"err", "forbidden", reason}.

local enr, dev, certidx, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, etype, did, suffix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local hash, not_after, mode, now = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local body, params, events_max = ARGV[9], ARGV[10], ARGV[11]
local endpoint = ARGV[12]

-- what a device reported lives this long after its last report: a device
-- sends a full report about once a day
local STATUS_TTL = 2592000
-- the errors kept per enrollment, newest first
local ERRORS_MAX = 100
-- the values (and declaration statuses) one enrollment may accumulate
-- through incremental reports: beyond, the stored ones are dropped and the
-- report starts them anew, as a full report would (a report carries at
-- most 4,096, the C side checks)
local VALUES_MAX = 10000

local function has_declaration(ident)
    local sets = redis.call('SMEMBERS',
                            mdm_key(MDM_KEY_DDM_ENRSETS, did, suffix))
    for _, s in ipairs(sets) do
        if redis.call('SISMEMBER', MDM_KEY_DDM_SET .. s, ident) == 1 then
            return true
        end
    end
    return false
end

local ep = {}

function ep.tokens()
    return {'ok', mdm_ddm_token(mdm_ddm_items(did, suffix))}
end

function ep.items()
    local items = mdm_ddm_items(did, suffix)
    local r = {'ok', mdm_ddm_token(items)}
    for _, it in ipairs(items) do
        r[#r + 1] = it[1]
        r[#r + 1] = it[2]
        r[#r + 1] = it[3]
    end
    return r
end

function ep.declaration()
    local kind, ident = ARGV[13], ARGV[14]
    if not has_declaration(ident) then return {'ok', ''} end
    local h = redis.call('HMGET', MDM_KEY_DDM_DECL .. ident, 'kind', 'json')
    if h[1] ~= kind or not h[2] then return {'ok', ''} end
    return {'ok', h[2]}
end

function ep.status()
    local full = ARGV[13] == '1'
    local values = mdm_key(MDM_KEY_DDM_STATUS, did, suffix)
    local dstatus = mdm_key(MDM_KEY_DDM_DSTATUS, did, suffix)
    local errors = mdm_key(MDM_KEY_DDM_ERRORS, did, suffix)
    -- a full report replaces what incremental ones merged
    if full then redis.call('DEL', values, dstatus) end
    local i = 14
    local n = tonumber(ARGV[i])
    if redis.call('HLEN', values) + n > VALUES_MAX then
        redis.call('DEL', values)
    end
    for j = i + 1, i + 2 * n, 2 do
        redis.call('HSET', values, ARGV[j], ARGV[j + 1])
    end
    i = i + 2 * n + 1
    local m = tonumber(ARGV[i])
    if redis.call('HLEN', dstatus) + m > VALUES_MAX then
        redis.call('DEL', dstatus)
    end
    for j = i + 1, i + 2 * m, 2 do
        redis.call('HSET', dstatus, ARGV[j], ARGV[j + 1])
    end
    for j = i + 2 * m + 1, #ARGV do
        redis.call('LPUSH', errors, ARGV[j])
    end
    redis.call('LTRIM', errors, 0, ERRORS_MAX - 1)
    for _, k in ipairs({values, dstatus, errors}) do
        redis.call('EXPIRE', k, STATUS_TTL)
    end
    redis.call('HSET', enr, 'ddm_status_at', now)
    return {'ok', ''}
end

if mdm_blocked(did) then return {'err', 'blocked'} end

if redis.call('EXISTS', dev) == 0 then
    return {'err', 'unknown enrollment: no Authenticate for device ' .. did}
end

if redis.call('EXISTS', enr) == 0 then
    return {'err', 'unknown enrollment'}
end

local denied = mdm_authorize('DeclarativeManagement', mode, dev, certidx,
                             did, hash, not_after, now)
if denied then return {'err', denied} end

local f = ep[endpoint]
if not f then return {'err', 'unknown endpoint'} end

redis.call('HSET', enr, 'last_seen', now)
mdm_xadd(events, events_max, 'type', 'DeclarativeManagement', 'id', id,
    'enrollment_type', etype, 'device_id', did, 'time', now,
    'params', params, 'body', body)
return f()
