-- KEYS: session. ARGV: the session's own timing ("t,i,m", records.timing_field).
-- Written only to a record that exists: a session that ended meanwhile gets none.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'timing', ARGV[1])
end
return 0
