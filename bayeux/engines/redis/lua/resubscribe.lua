-- KEYS: subscriptions. ARGV: prefix, clientId, patterns... Writes a session's subscriptions
-- again (Redis lost them, or missed changes while it could not be reached): the session leaves
-- the members set of every channel it had, then has exactly `patterns`, in one step.
for _, pattern in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('SREM', ARGV[1] .. 'members:' .. pattern, ARGV[2])
end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('SADD', ARGV[1] .. 'members:' .. ARGV[i], ARGV[2])
end
return 0
