-- page: one page of the index after a cursor, oldest submission first.
--
-- KEYS[1] index     {ns}:jobs
-- ARGV[1] cursor score   ARGV[2] cursor member ('' for the start)   ARGV[3] limit
--
-- The rule: a page starts strictly after the cursor, whether or not the cursor's job is still
-- there.
--
-- Returns [member, score, member, score, ...].
local score, after, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out, offset = {}, 0
while #out < 2 * limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], score, '+inf', 'WITHSCORES', 'LIMIT', offset, 256)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    if after == '' or tonumber(batch[i + 1]) > tonumber(score) or batch[i] > after then
      out[#out + 1] = batch[i]
      out[#out + 1] = batch[i + 1]
      if #out >= 2 * limit then break end
    end
  end
  offset = offset + 256
end
return out
