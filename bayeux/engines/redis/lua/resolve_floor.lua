-- A record with `follows` 1 has at least the position its owner last saved as its floor
-- (engine._save): made explicit before the record changes hands, since the flag means
-- nothing to another owner. Positions are compared as decimal strings: they pass 2^53, past
-- what Lua's numbers hold exactly.
local function resolve_floor(key, prefix, owner)
  if redis.call('HGET', key, 'follows') ~= '1' then return end
  redis.call('HSET', key, 'follows', '0')
  if owner == '' then return end
  local floor = redis.call('GET', prefix .. 'floor:' .. owner)
  local pos = redis.call('HGET', key, 'pos') or '0'
  if floor and (#floor > #pos or (#floor == #pos and floor > pos)) then
    redis.call('HSET', key, 'pos', floor)
  end
end
