-- KEYS: session, subscriptions. ARGV: prefix, clientId, me ("" to end it whoever serves it).
-- Forgets a session; returns the process that served it ("" for none), or false when there
-- was no such session or (with `me`) another process serves it now.
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return false end
if ARGV[3] ~= '' and owner ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1], KEYS[2])
if owner ~= '' then redis.call('SREM', ARGV[1] .. 'owned:' .. owner, ARGV[2]) end
redis.call('ZREM', ARGV[1] .. 'orphans', ARGV[2])
return owner
