-- forget: forgets a dead replica run once none of its jobs is left unfinished.
--
-- KEYS[1] lease     {ns}:lease:<sha1(replica)>
-- KEYS[2] replicas  {ns}:replicas
-- KEYS[3] owned     {ns}:owned:<sha1(replica)>:<run>
-- KEYS[4] cancels   {ns}:cancel:<sha1(replica)>:<run>
-- ARGV[1] run (incarnation)   ARGV[2] the run's replicas field
--
-- The rule: only a dead run with no unfinished job is forgotten.
--
-- Returns 1 (forgotten) or 0 (alive, or jobs left).
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
if redis.call('SCARD', KEYS[3]) > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[4])
return 1
