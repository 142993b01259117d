-- KEYS: log. ARGV: log length, then for each entry its number of field/value pairs and the
-- pairs. Appends a batch of entries in one step: one command to send and one reply to read
-- (a MULTI of XADDs costs the client several times as much), and a process blocked reading the
-- log gets the whole batch at once, so its subscribers get one frame for it. Returns the ids.
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
