-- KEYS: session. ARGV: me, prefix, clientId, pos, batch, batches, connected, pending (pos ""
-- keeps the stored state: a session this process did not have; pending: what was queued for
-- it that is not in the log, a JSON array, handed to the next owner). Gives the session to
-- the process claiming it, or leaves it ownerless (a drain) for any process to claim.
-- Returns the new owner ("" for none), or false when this process no longer owned it.
local me, prefix, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', KEYS[1], 'owner') ~= me then return false end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'pos', ARGV[4], 'batch', ARGV[5], 'batches', ARGV[6],
    'connected', ARGV[7], 'pending', ARGV[8], 'follows', '0')
else
  resolve_floor(KEYS[1], prefix, me)
end
redis.call('SREM', prefix .. 'owned:' .. me, id)
local claimant = redis.call('HGET', KEYS[1], 'claimant')
if claimant then
  redis.call('HSET', KEYS[1], 'owner', claimant)
  redis.call('HDEL', KEYS[1], 'claimant')
  redis.call('SADD', prefix .. 'owned:' .. claimant, id)
  redis.call('SADD', prefix .. 'processes', claimant)
  return claimant
end
redis.call('HSET', KEYS[1], 'owner', '')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', prefix .. 'orphans', ms, ARGV[3])
return ''
