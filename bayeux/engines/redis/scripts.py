"""Lua scripts: each change of a session's ownership happens in one atomic step in Redis, so
two processes claiming one session at once cannot both get it.

Key names beyond KEYS are built from the prefix inside the scripts: the engine runs on one
Redis (or one Sentinel-managed primary), not on Redis Cluster.
"""

# A record with `follows` 1 has at least the position its owner last saved as its floor
# (engine._save): made explicit before the record changes hands, since the flag means
# nothing to another owner. Positions are compared as decimal strings: they pass 2^53, past
# what Lua's numbers hold exactly.
_RESOLVE_FLOOR = """
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
"""

# KEYS: session, subscriptions. ARGV: me, prefix, clientId, force ("1": take it even from a
# live owner that did not let go in time).
# Returns nil (no such session), {"wait", owner} (a live process serves it: ask it to let
# go, then claim again), or {"mine", {fields..., "|", subscriptions...}, previous owner}.
CLAIM = (
    _RESOLVE_FLOOR
    + """
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return false end
local me, prefix, id = ARGV[1], ARGV[2], ARGV[3]
if owner ~= me and owner ~= '' and ARGV[4] ~= '1'
   and redis.call('EXISTS', prefix .. 'alive:' .. owner) == 1 then
  redis.call('HSET', KEYS[1], 'claimant', me)
  return {'wait', owner}
end
resolve_floor(KEYS[1], prefix, owner)
if owner ~= me then
  if owner ~= '' then redis.call('SREM', prefix .. 'owned:' .. owner, id) end
  redis.call('ZREM', prefix .. 'orphans', id)
  redis.call('HSET', KEYS[1], 'owner', me)
  redis.call('SADD', prefix .. 'owned:' .. me, id)
  redis.call('SADD', prefix .. 'processes', me)
end
redis.call('HDEL', KEYS[1], 'claimant')
local out = redis.call('HGETALL', KEYS[1])
redis.call('HDEL', KEYS[1], 'pending')
table.insert(out, '|')
for _, s in ipairs(redis.call('SMEMBERS', KEYS[2])) do table.insert(out, s) end
return {'mine', out, owner}
"""
)

# KEYS: session. ARGV: me, prefix, clientId, pos, batch, batches, connected, pending (pos ""
# keeps the stored state: a session this process did not have; pending: what was queued for
# it that is not in the log, a JSON array, handed to the next owner). Gives the session to
# the process claiming it, or leaves it ownerless (a drain) for any process to claim.
# Returns the new owner ("" for none), or false when this process no longer owned it.
RELEASE = (
    _RESOLVE_FLOOR
    + """
local me, prefix, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', KEYS[1], 'owner') ~= me then return false end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'pos', ARGV[4], 'batch', ARGV[5], 'batches', ARGV[6],
    'connected', ARGV[7], 'pending', ARGV[8], 'follows', '0')
else
  resolve_floor(KEYS[1], prefix, me)
end
redis.call('SREM', prefix .. 'owned:' .. me, id)
local claimant = redis.call('HGET', KEYS[1], 'claimant')
if claimant then
  redis.call('HSET', KEYS[1], 'owner', claimant)
  redis.call('HDEL', KEYS[1], 'claimant')
  redis.call('SADD', prefix .. 'owned:' .. claimant, id)
  redis.call('SADD', prefix .. 'processes', claimant)
  return claimant
end
redis.call('HSET', KEYS[1], 'owner', '')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', prefix .. 'orphans', ms, ARGV[3])
return ''
"""
)

# ARGV: me, prefix, floor, the floor's expiry in ms, this process's `alive` expiry in ms ("0":
# leave it), the number of sessions that left, their clientIds, then (clientId, pos, batch,
# batches, connected, follows) for each session whose saved state changed. Renewing `alive`
# here saves the periodic upkeep a round trip of its own. The floor is the process's read
# position: every session it serves whose record `follows` it has had everything up to
# there. Records of sessions that left the process are pinned to the floor saved before
# (they had it then), and the floor and the records change in one step: no record is left
# following a floor it has not reached.
# Saves the sessions this process still owns; returns the clientIds it no longer owns
# (taken by force elsewhere) and those whose record is gone (Redis lost its data).
SAVE = (
    _RESOLVE_FLOOR
    + """
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
"""
)

# KEYS: session, subscriptions. ARGV: prefix, clientId, me ("" to end it whoever serves it).
# Forgets a session; returns the process that served it ("" for none), or false when there
# was no such session or (with `me`) another process serves it now.
END = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return false end
if ARGV[3] ~= '' and owner ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1], KEYS[2])
if owner ~= '' then redis.call('SREM', ARGV[1] .. 'owned:' .. owner, ARGV[2]) end
redis.call('ZREM', ARGV[1] .. 'orphans', ARGV[2])
return owner
"""

# ARGV: prefix, maxInterval in ms, limit. Sessions of processes that stopped renewing their
# `alive` key become orphans; orphans nobody claimed within maxInterval are forgotten.
# Returns how many were forgotten.
REAP = """
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
for _, id in ipairs(expired) do
  local key = prefix .. 'session:' .. id
  if redis.call('HGET', key, 'owner') == '' or redis.call('EXISTS', prefix .. 'alive:' ..
      (redis.call('HGET', key, 'owner') or '')) == 0 then
    redis.call('DEL', key, prefix .. 'subs:' .. id)
  end
  redis.call('ZREM', prefix .. 'orphans', id)
end
return #expired
"""

# KEYS: subscriptions, log. ARGV: clientId, subscribed ("1"/"0"), log length, replay (JSON
# or ""), patterns... Changes the set and writes the change to the log in one step, with
# only the patterns it changed, so that a process taking the session over can tell the
# subscriptions at any position by undoing the later entries. Returns the entry's id (false
# when nothing changed and no replay was asked).
SUBSCRIBE = """
local changed = {}
for i = 5, #ARGV do
  local n
  if ARGV[2] == '1' then
    n = redis.call('SADD', KEYS[1], ARGV[i])
  else
    n = redis.call('SREM', KEYS[1], ARGV[i])
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
"""

# KEYS: log. ARGV: log length, then for each entry its number of field/value pairs and the
# pairs. Appends a batch of entries in one step: one command to send and one reply to read
# (a MULTI of XADDs costs the client several times as much), and a process blocked reading the
# log gets the whole batch at once, so its subscribers get one frame for it. Returns the ids.
APPEND = """
local ids = {}
local i = 2
while i <= #ARGV do
  local pairs = tonumber(ARGV[i])
  local command = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*'}
  for j = 1, pairs * 2 do command[#command + 1] = ARGV[i + j] end
  ids[#ids + 1] = redis.call(unpack(command))
  i = i + pairs * 2 + 1
end
return ids
"""
