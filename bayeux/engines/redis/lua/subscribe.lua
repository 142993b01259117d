-- KEYS: subscriptions, log, session. ARGV: clientId, subscribed ("1"/"0"), log length, replay (JSON
-- or ""), prefix, patterns... Changes the set and writes the change to the log in one step,
-- with only the patterns it changed, so that a process taking the session over can tell the
-- subscriptions at any position by undoing the later entries; each channel's set of members
-- (its subscribers across the deployment) changes in the same step. Nothing is written for a
-- session that has ended (its record is gone): its sets would stay for good. Returns the
-- entry's id (false when nothing changed, no replay was asked, or the session is gone).
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local changed = {}
for i = 6, #ARGV do
  local n
  if ARGV[2] == '1' then
    n = redis.call('SADD', KEYS[1], ARGV[i])
    if n == 1 then redis.call('SADD', ARGV[5] .. 'members:' .. ARGV[i], ARGV[1]) end
  else
    n = redis.call('SREM', KEYS[1], ARGV[i])
    if n == 1 then redis.call('SREM', ARGV[5] .. 'members:' .. ARGV[i], ARGV[1]) end
  end
  if n == 1 then table.insert(changed, ARGV[i]) end
end
if #changed == 0 and ARGV[4] == '' then return false end
local patterns = '[]'
if #changed > 0 then patterns = cjson.encode(changed) end
local unsubscribed = '1'
if ARGV[2] == '1' then unsubscribed = '0' end
if ARGV[4] ~= '' then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 's', ARGV[1],
    'p', patterns, 'u', unsubscribed, 'r', ARGV[4])
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 's', ARGV[1],
  'p', patterns, 'u', unsubscribed)
