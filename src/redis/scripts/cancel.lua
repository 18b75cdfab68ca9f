-- cancel: accepts a cancel request for another run's job, or says why not.
--
-- KEYS[1] job       {ns}:job:<sha1(id)>
-- KEYS[2] lease     {ns}:lease:<sha1(replica)>
-- KEYS[3] dead      {ns}:dead:<sha1(replica)>:<run>
-- KEYS[4] epoch     {ns}:epoch
-- KEYS[5] cancels   {ns}:cancel:<sha1(replica)>:<run>, a hash and a pub/sub channel
-- ARGV[1] id   ARGV[2] member (sha1 of the id)   ARGV[3] replica name   ARGV[4] run
-- ARGV[5] generation   ARGV[6] the request's TTL ms   ARGV[7] the caller's lease ms
--
-- The rule: an accepted cancel is kept. It is stored (and published) only while the job's run
-- is alive, so its owner applies it (from the message, or from the stored flag at its next
-- heartbeat); if the run is dead the job is `lost` and none of its writes can make it
-- `completed` or `failed` (its owner cancels it when it finds its run dead). Stored requests
-- are deleted only with their run, once that run is dead (forget.lua).
--
-- Returns 1 (stored and published), 2 (the run is dead: the job is lost), 3 (the job is
-- already terminal or lost) or 0 (the record is not that submission any more: read it again).
local cur = redis.call('HMGET', KEYS[1], 'id', 'rep', 'inc', 'gen', 'stage')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[3] or cur[3] ~= ARGV[4] or cur[4] ~= ARGV[5] then return 0 end
if (tonumber(cur[5]) or 0) >= 2 then return 3 end
if run_dead(KEYS[2], KEYS[3], KEYS[4], ARGV[4], tonumber(ARGV[7]), now_ms()) then return 2 end
local payload = ARGV[5] .. ':' .. ARGV[1]
redis.call('HSET', KEYS[5], ARGV[2], payload)
redis.call('PEXPIRE', KEYS[5], ARGV[6])
redis.call('PUBLISH', KEYS[5], payload)
return 1
