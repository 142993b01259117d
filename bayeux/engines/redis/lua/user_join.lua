-- ARGV: prefix, clientId, user, limit. Records the session as the user's (in its record too,
-- when it has one yet: a session being handshaken gets it with its whole record). Returns 1
-- when the user had no session in the deployment (it comes online), 0 when it had some, and -1,
-- recording nothing, when it has `limit` sessions already (-1: no limit). Counted and recorded
-- in one script, so that processes associating at once cannot pass the limit together.
local prefix, id, user, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local set = prefix .. 'user:' .. user
if limit >= 0 and redis.call('SISMEMBER', set, id) == 0 and redis.call('SCARD', set) >= limit then
  return -1
end
local key = prefix .. 'session:' .. id
if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'user', user) end
redis.call('SADD', set, id)
if redis.call('SCARD', set) == 1 then
  redis.call('SADD', prefix .. 'online', user)
  return 1
end
return 0
