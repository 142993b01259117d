-- Shared by END, REAP and USER_LEAVE: forgets session `id` as one of `user`'s; returns the
-- user when that was its last session in the deployment (it goes offline), else ''.
local function leave_user(prefix, id, user)
  if not user or user == '' then return '' end
  local set = prefix .. 'user:' .. user
  if redis.call('SREM', set, id) == 1 and redis.call('SCARD', set) == 0 then
    redis.call('SREM', prefix .. 'online', user)
    return user
  end
  return ''
end
