-- mdm-worker: what a push to enrollment ARGV[1] needs: topic, token,
-- magic, token_updated_at, token_invalid, and the version (updated_at) of
-- the topic's push certificate.  ARGV[2] == '1': the job came from BLMOVE,
-- it is no longer pending in mdm:push (C1).
if ARGV[2] == '1' then redis.call('SREM', MDM_KEY_PUSH_PENDING, ARGV[1]) end
local did, sfx = mdm_split_id(ARGV[1])
local e = redis.call('HMGET', mdm_key(MDM_KEY_ENR, did, sfx), 'topic',
    'token', 'push_magic', 'token_updated_at', 'token_invalid')
local stamp = e[1] and redis.call('HGET', MDM_KEY_PUSHCERT .. e[1],
    'updated_at')
return {e[1] or '', e[2] or '', e[3] or '', e[4] or '', e[5] or '',
    stamp or ''}
