-- unclaim: takes back a claim whose task the local worker then refused (a live local task of
-- the same id, a shutdown, the capacity), so the id is free again at once.
--
-- KEYS[1] job       {ns}:job:<sha1(id)>
-- KEYS[2] index     {ns}:jobs
-- KEYS[3] owned     {ns}:owned:<sha1(replica)>:<run>
-- ARGV[1] member (sha1 of the id)   ARGV[2] replica name   ARGV[3] run   ARGV[4] generation
-- ARGV[5] the claim's fencing token
--
-- The rule: only that very claim, still pending (never a record its task or anyone else
-- wrote since), is deleted with its index entries. The record it replaced (a finished or lost
-- earlier submission) is not brought back.
--
-- Returns 1 (taken back) or 0 (the record is not that pending claim any more).
local cur = redis.call('HMGET', KEYS[1], 'rep', 'inc', 'gen', 'tok', 'stage')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] or cur[3] ~= ARGV[4] or cur[4] ~= ARGV[5]
  or cur[5] ~= '0' then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
