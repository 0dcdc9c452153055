-- The SCEP CA (ngx_http_mdm_scep.c); ARGV[1] names the operation.

local op = ARGV[1]

if op == 'issue' then
    -- KEYS[1] mdm:scep:challenge:VALUE, KEYS[2] mdm:scep:serial;
    -- ARGV[2] '1': a one-time challenge, consumed here (contract E1)
    if ARGV[2] == '1' and not redis.call('GETDEL', KEYS[1]) then
        return {'err', 'challenge'}
    end
    -- serials are unique across every nginx sharing this Redis (E2)
    return {'ok', tostring(redis.call('INCR', KEYS[2]))}
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
    return {'ok'}
end

return {'err', 'unknown operation'}
