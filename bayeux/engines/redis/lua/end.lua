-- KEYS: session, subscriptions. ARGV: prefix, clientId, me ("" to end it whoever serves it),
-- stop ms ("0": none; else a claim within that time answers "stopped": the server
-- disconnected it, and its client is told to stop wherever its next connect goes).
-- Forgets a session (and it as its user's); returns {the process that served it ("" for
-- none), its user if that was the user's last session, else ""}, or false when there was no
-- such session or (with `me`) another process serves it now.
if ARGV[4] ~= '0' then
  redis.call('SET', ARGV[1] .. 'stopped:' .. ARGV[2], ARGV[4], 'PX', ARGV[4])
end
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return false end
if ARGV[3] ~= '' and owner ~= ARGV[3] then return false end
local user = redis.call('HGET', KEYS[1], 'user')
for _, pattern in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('SREM', ARGV[1] .. 'members:' .. pattern, ARGV[2])
end
redis.call('DEL', KEYS[1], KEYS[2])
if owner ~= '' then redis.call('SREM', ARGV[1] .. 'owned:' .. owner, ARGV[2]) end
redis.call('ZREM', ARGV[1] .. 'orphans', ARGV[2])
return {owner, leave_user(ARGV[1], ARGV[2], user)}
