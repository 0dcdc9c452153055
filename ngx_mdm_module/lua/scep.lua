-- The SCEP CA (ngx_http_mdm_scep.c); ARGV[1] names the operation.

local op = ARGV[1]

if op == 'issue' then
    -- KEYS[1] mdm:scep:challenge:VALUE, KEYS[2] mdm:scep:serial;
    -- ARGV[2] '1': a one-time challenge, consumed here (contract E1)
    if ARGV[2] == '1' and not redis.call('GETDEL', KEYS[1]) then
        return {'err', 'challenge'}
    end
    -- serials are unique across every nginx sharing this Redis (E2)
    local serial = tostring(redis.call('INCR', KEYS[2]))
    -- a renewal's challenge: the device it was made for follows the serial
    -- until the certificate is recorded
    local value = string.sub(KEYS[1], #MDM_KEY_SCEP_CHALLENGE + 1)
    local did = ARGV[2] == '1'
                and redis.call('GETDEL', MDM_KEY_RENEW_CHALLENGE .. value)
    if did then
        redis.call('SET', MDM_KEY_RENEW_SERIAL .. serial, did, 'EX', 3600)
    end
    return {'ok', serial}
end

if op == 'record' then
    -- KEYS[1] mdm:scep:cert:SERIAL, KEYS[2] mdm:scep:certs; ARGV: op,
    -- serial, subject, notAfter (s), sha256, issued_at (ms), now (s), keep (s)
    local not_after = tonumber(ARGV[4])
    local keep = tonumber(ARGV[8])
    redis.call('HSET', KEYS[1], 'serial', ARGV[2], 'subject', ARGV[3],
               'not_after', ARGV[4], 'sha256', ARGV[5], 'issued_at', ARGV[6])
    redis.call('EXPIREAT', KEYS[1], not_after + keep)
    redis.call('ZADD', KEYS[2], not_after, ARGV[2])
    -- the index forgets what the records forgot: past notAfter + keep
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf',
               '(' .. tostring(tonumber(ARGV[7]) - keep))
    -- issued for a renewal: checkin.lua lets it take that device over
    local did = redis.call('GETDEL', MDM_KEY_RENEW_SERIAL .. ARGV[2])
    if did and not_after > tonumber(ARGV[7]) then
        redis.call('SET', MDM_KEY_RENEWED .. ARGV[5], did, 'EXAT', not_after)
    end
    return {'ok'}
end

if op == 'challenge' then
    -- POST /v1/challenge: KEYS[1] mdm:scep:challenge:VALUE; ARGV: op,
    -- now (ms), TTL (s); the value is the key's last part
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return {'ok', string.sub(KEYS[1], #MDM_KEY_SCEP_CHALLENGE + 1),
            tonumber(ARGV[3])}
end

if op == 'list' then
    -- GET /v1/certificates: KEYS[1] mdm:scep:certs; ARGV: op, highest
    -- notAfter (a ZRANGEBYSCORE bound), offset, count, subject substring.
    -- The page is taken before the subject filter, so a page may be short;
    -- the next cursor is given while pages are full.
    local off, count = tonumber(ARGV[3]), tonumber(ARGV[4])
    local serials = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2],
                               'LIMIT', off, count)
    local out = {'ok', ''}
    if #serials == count then out[2] = tostring(off + count) end
    for _, s in ipairs(serials) do
        local h = redis.call('HMGET', MDM_KEY_SCEP_CERT .. s, 'subject',
                             'not_after', 'sha256', 'issued_at')
        if h[1] and (ARGV[5] == '' or string.find(h[1], ARGV[5], 1, true)) then
            out[#out + 1] = s
            out[#out + 1] = h[1]
            out[#out + 1] = h[2] or '0'
            out[#out + 1] = h[3] or ''
            out[#out + 1] = h[4] or '0'
        end
    end
    return out
end

return {'err', 'unknown operation'}
