-- mark_lost: writes `lost` into one unfinished record of a dead replica run (or, with force,
-- of the caller's own run: its owner no longer has the task, which ended while its transitions
-- were dropped and was removed before the re-sync).
--
-- KEYS[1] job       {ns}:job:<sha1(id)>
-- KEYS[2] lease     {ns}:lease:<sha1(replica)>
-- KEYS[3] expiry    {ns}:expiry
-- KEYS[4] owned     {ns}:owned:<sha1(replica)>:<run>
-- KEYS[5] dead      {ns}:dead:<sha1(replica)>:<run>
-- KEYS[6] epoch     {ns}:epoch
-- ARGV[1] replica name   ARGV[2] run (incarnation)   ARGV[3] retention ms
-- ARGV[4] member (sha1 of the id)   ARGV[5] '1': force   ARGV[6] the caller's lease ms
--
-- The rule: only an unfinished record of that very run, and only once the run is dead
-- (includes/run.lua), or by its own owner.
--
-- Returns 1 (marked), 0 (not: alive, finished, or owned by another run now).
local cur = redis.call('HMGET', KEYS[1], 'rep', 'inc', 'stage')
local stage = tonumber(cur[3])
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or not stage or stage >= 2 then
  redis.call('SREM', KEYS[4], ARGV[4])
  return 0
end
local now = now_ms()
if ARGV[5] ~= '1' and not run_dead(KEYS[2], KEYS[5], KEYS[6], ARGV[2], tonumber(ARGV[6]), now) then
  return 0
end
local ret = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'stage', 2, 'st', 'lost', 'end', now, 'upd', now)
redis.call('PEXPIRE', KEYS[1], ret)
redis.call('ZADD', KEYS[3], now + ret, ARGV[4])
redis.call('SREM', KEYS[4], ARGV[4])
return 1
