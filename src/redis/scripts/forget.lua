-- forget: forgets a dead replica run once none of its jobs is left unfinished.
--
-- KEYS[1] lease     {ns}:lease:<sha1(replica)>
-- KEYS[2] replicas  {ns}:replicas
-- KEYS[3] owned     {ns}:owned:<sha1(replica)>:<run>
-- KEYS[4] cancels   {ns}:cancel:<sha1(replica)>:<run>
-- KEYS[5] dead      {ns}:dead:<sha1(replica)>:<run>
-- KEYS[6] epoch     {ns}:epoch
-- ARGV[1] run (incarnation)   ARGV[2] the run's replicas field   ARGV[3] the caller's lease ms
--
-- The rule: only a dead run (includes/run.lua) with no unfinished record is forgotten; its
-- stored cancel requests go with it (none of its jobs can end `completed` or `failed` any
-- more). Its dead key stays until DEAD_TTL.
--
-- Returns 1 (forgotten) or 0 (alive, or jobs left).
if not run_dead(KEYS[1], KEYS[5], KEYS[6], ARGV[1], tonumber(ARGV[3]), now_ms()) then return 0 end
if redis.call('SCARD', KEYS[3]) > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[4])
return 1
