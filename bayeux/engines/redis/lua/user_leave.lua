-- ARGV: prefix, clientId, user. The session is no longer the user's (it goes on). Returns the
-- user when that was its last session (it goes offline), else ''.
local prefix, id, user = ARGV[1], ARGV[2], ARGV[3]
local key = prefix .. 'session:' .. id
if redis.call('HGET', key, 'user') == user then redis.call('HDEL', key, 'user') end
return leave_user(prefix, id, user)
