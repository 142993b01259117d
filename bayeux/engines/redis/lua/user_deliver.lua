-- KEYS: log. ARGV: prefix, user, log length, the encoded message. Appends one entry for each
-- session of the user (log.delivery_fields), in one step; returns how many.
local ids = redis.call('SMEMBERS', ARGV[1] .. 'user:' .. ARGV[2])
for _, id in ipairs(ids) do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 't', id, 'm', ARGV[4])
end
return #ids
