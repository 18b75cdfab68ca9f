-- mark_lost: marks one unfinished job of a replica run `lost` if that run's lease is gone (or,
-- with force, because its owner no longer has the task: it ended while its transitions were
-- dropped, and was removed before the re-sync).
--
-- KEYS[1] job       {ns}:job:<sha1(id)>
-- KEYS[2] lease     {ns}:lease:<sha1(replica)>
-- KEYS[3] expiry    {ns}:expiry
-- KEYS[4] owned     {ns}:owned:<sha1(replica)>:<run>
-- ARGV[1] replica name   ARGV[2] run (incarnation)   ARGV[3] retention ms
-- ARGV[4] member (sha1 of the id)   ARGV[5] '1': force
--
-- The rule: only an unfinished record of that very run, and only while the run is dead.
--
-- Returns 1 (marked), 0 (not: alive, finished, or owned by another run now).
local cur = redis.call('HMGET', KEYS[1], 'rep', 'inc', 'stage')
local stage = tonumber(cur[3])
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or not stage or stage >= 2 then
  redis.call('SREM', KEYS[4], ARGV[4])
  return 0
end
if ARGV[5] ~= '1' and redis.call('GET', KEYS[2]) == ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ret = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'stage', 2, 'st', 'lost', 'end', now, 'upd', now)
redis.call('PEXPIRE', KEYS[1], ret)
redis.call('ZADD', KEYS[3], now + ret, ARGV[4])
redis.call('SREM', KEYS[4], ARGV[4])
return 1
