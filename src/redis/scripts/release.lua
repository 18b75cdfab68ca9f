-- release: gives a replica run's lease back after its jobs were flushed.
--
-- KEYS[1] lease     {ns}:lease:<sha1(replica)>
-- KEYS[2] replicas  {ns}:replicas
-- KEYS[3] owned     {ns}:owned:<sha1(replica)>:<run>
-- KEYS[4] cancels   {ns}:cancel:<sha1(replica)>:<run>
-- ARGV[1] run (incarnation)   ARGV[2] the run's replicas field
--
-- The rule: only the run that holds the lease deletes it; the run's bookkeeping goes with it.
--
-- Returns 1.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3], KEYS[4])
return 1
