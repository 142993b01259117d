-- ARGV: me, prefix, floor, the floor's expiry in ms, this process's `alive` expiry in ms ("0":
-- leave it), the number of sessions that left, their clientIds, then (clientId, pos, batch,
-- batches, connected, follows) for each session whose saved state changed. Renewing `alive`
-- here saves the periodic upkeep a round trip of its own. The floor is the process's read
-- position: every session it serves whose record `follows` it has had everything up to
-- there. Records of sessions that left the process are pinned to the floor saved before
-- (they had it then), and the floor and the records change in one step: no record is left
-- following a floor it has not reached.
-- Saves the sessions this process still owns; returns the clientIds it no longer owns
-- (taken by force elsewhere) and those whose record is gone (Redis lost its data).
local me, prefix = ARGV[1], ARGV[2]
local lost, missing = {}, {}
local first = 7 + tonumber(ARGV[6])
for i = 7, first - 1 do
  local key = prefix .. 'session:' .. ARGV[i]
  if redis.call('HGET', key, 'owner') == me then resolve_floor(key, prefix, me) end
end
for i = first, #ARGV, 6 do
  local key = prefix .. 'session:' .. ARGV[i]
  local owner = redis.call('HGET', key, 'owner')
  if not owner then
    table.insert(missing, ARGV[i])
  elseif owner ~= me then
    table.insert(lost, ARGV[i])
  else
    local pos = ARGV[i + 1]
    if ARGV[i + 5] == '1' then pos = ARGV[3] end
    redis.call('HSET', key, 'pos', pos, 'batch', ARGV[i + 2], 'batches', ARGV[i + 3],
      'connected', ARGV[i + 4], 'follows', ARGV[i + 5])
  end
end
redis.call('SET', prefix .. 'floor:' .. me, ARGV[3], 'PX', ARGV[4])
if ARGV[5] ~= '0' then redis.call('SET', prefix .. 'alive:' .. me, '1', 'PX', ARGV[5]) end
return {lost, missing}
