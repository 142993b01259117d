-- KEYS: session, subscriptions. ARGV: me, prefix, clientId, force ("1": take it even from a
-- live owner that did not let go in time), browser ("*": any; else only a session bound to
-- no browser or to this one, "" meaning none).
-- Returns nil (no such session), {"stopped", ms} (ended by the server ms ago at most: its
-- client is to stop), {"foreign"} (bound to another browser: nothing moved),
-- {"wait", owner} (a live process serves it: ask it to let go, then claim again), or
-- {"mine", {fields..., "|", subscriptions...}, previous owner}.
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then
  local left = redis.call('PTTL', ARGV[2] .. 'stopped:' .. ARGV[3])
  if left > 0 then return {'stopped', left} end
  return false
end
if ARGV[5] ~= '*' then
  local bound = redis.call('HGET', KEYS[1], 'browser')
  if bound and bound ~= '' and bound ~= ARGV[5] then return {'foreign'} end
end
local me, prefix, id = ARGV[1], ARGV[2], ARGV[3]
if owner ~= me and owner ~= '' and ARGV[4] ~= '1'
   and redis.call('EXISTS', prefix .. 'alive:' .. owner) == 1 then
  redis.call('HSET', KEYS[1], 'claimant', me)
  return {'wait', owner}
end
resolve_floor(KEYS[1], prefix, owner)
if owner ~= me then
  if owner ~= '' then redis.call('SREM', prefix .. 'owned:' .. owner, id) end
  redis.call('ZREM', prefix .. 'orphans', id)
  redis.call('HSET', KEYS[1], 'owner', me)
  redis.call('SADD', prefix .. 'owned:' .. me, id)
  redis.call('SADD', prefix .. 'processes', me)
end
redis.call('HDEL', KEYS[1], 'claimant')
local out = redis.call('HGETALL', KEYS[1])
redis.call('HDEL', KEYS[1], 'pending')
table.insert(out, '|')
for _, s in ipairs(redis.call('SMEMBERS', KEYS[2])) do table.insert(out, s) end
return {'mine', out, owner}
