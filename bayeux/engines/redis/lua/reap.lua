-- ARGV: prefix, maxInterval in ms, limit. Sessions of processes that stopped renewing their
-- `alive` key become orphans; orphans nobody claimed within maxInterval are forgotten.
-- Returns {the users whose last session that was (they go offline), then for each session
-- forgotten {clientId, its record's fields and values...}}.
local prefix = ARGV[1]
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for _, process in ipairs(redis.call('SMEMBERS', prefix .. 'processes')) do
  if redis.call('EXISTS', prefix .. 'alive:' .. process) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', prefix .. 'owned:' .. process)) do
      redis.call('ZADD', prefix .. 'orphans', 'NX', ms, id)
    end
    redis.call('DEL', prefix .. 'owned:' .. process)
    redis.call('SREM', prefix .. 'processes', process)
  end
end
local expired = redis.call('ZRANGEBYSCORE', prefix .. 'orphans', '-inf', ms - tonumber(ARGV[2]),
  'LIMIT', 0, tonumber(ARGV[3]))
local offline = {}
local forgotten = {offline}
for _, id in ipairs(expired) do
  local key = prefix .. 'session:' .. id
  if redis.call('HGET', key, 'owner') == '' or redis.call('EXISTS', prefix .. 'alive:' ..
      (redis.call('HGET', key, 'owner') or '')) == 0 then
    local user = redis.call('HGET', key, 'user')
    local record = redis.call('HGETALL', key)
    table.insert(record, 1, id)
    forgotten[#forgotten + 1] = record
    for _, pattern in ipairs(redis.call('SMEMBERS', prefix .. 'subs:' .. id)) do
      redis.call('SREM', prefix .. 'members:' .. pattern, id)
    end
    redis.call('DEL', key, prefix .. 'subs:' .. id)
    local gone = leave_user(prefix, id, user)
    if gone ~= '' then offline[#offline + 1] = gone end
  end
  redis.call('ZREM', prefix .. 'orphans', id)
end
return forgotten
