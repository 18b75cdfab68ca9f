-- page: one page of the index after a cursor, oldest or newest submission first.
--
-- KEYS[1] index     {ns}:jobs
-- ARGV[1] cursor score   ARGV[2] cursor member ('' for the start)   ARGV[3] limit
-- ARGV[4] order: 'asc' (oldest first) or 'desc' (newest first)
--
-- The order is (score, member): ascending for 'asc', both descending for 'desc' (Redis orders
-- equal scores by member, and reverses that in ZREVRANGEBYSCORE).
--
-- The rule: a page starts strictly after the cursor in that order, whether or not the cursor's
-- job is still there. Jobs indexed later have a score at least the newest one's, so a 'desc'
-- walk that started before them never meets them and never repeats or skips an older job.
--
-- Returns [member, score, member, score, ...].
local score, after, limit, desc = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == 'desc'
local out, offset = {}, 0
local function follows(member, member_score)
  if after == '' then return true end
  local s, c = tonumber(member_score), tonumber(score)
  if desc then
    return s < c or (s == c and member < after)
  end
  return s > c or (s == c and member > after)
end
while #out < 2 * limit do
  local batch
  if desc then
    local top = score
    if after == '' then top = '+inf' end
    batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], top, '-inf', 'WITHSCORES', 'LIMIT', offset, 256)
  else
    batch = redis.call('ZRANGEBYSCORE', KEYS[1], score, '+inf', 'WITHSCORES', 'LIMIT', offset, 256)
  end
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    if follows(batch[i], batch[i + 1]) then
      out[#out + 1] = batch[i]
      out[#out + 1] = batch[i + 1]
      if #out >= 2 * limit then break end
    end
  end
  offset = offset + 256
end
return out
