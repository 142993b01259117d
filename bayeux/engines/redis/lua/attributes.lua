-- KEYS: session. ARGV: pairs of attribute name and JSON value ("" removes it).
-- Written only to a record that exists: a session that ended meanwhile gets none.
-- Returns the process serving the session ("" for none), or false when there is no record.
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return false end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], 'a:' .. ARGV[i])
  else
    redis.call('HSET', KEYS[1], 'a:' .. ARGV[i], ARGV[i + 1])
  end
end
return owner
