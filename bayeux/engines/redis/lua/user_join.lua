-- ARGV: prefix, clientId, user. Records the session as the user's (in its record too, when it
-- has one yet: a session being handshaken gets it with its whole record). Returns 1 when the
-- user had no session in the deployment (it comes online), else 0.
local prefix, id, user = ARGV[1], ARGV[2], ARGV[3]
local key = prefix .. 'session:' .. id
if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'user', user) end
local set = prefix .. 'user:' .. user
redis.call('SADD', set, id)
if redis.call('SCARD', set) == 1 then
  redis.call('SADD', prefix .. 'online', user)
  return 1
end
return 0
