-- lease: takes or renews a replica run's lease.
--
-- KEYS[1] lease     {ns}:lease:<sha1(replica)>, holding the run's incarnation, with a TTL
-- KEYS[2] replicas  {ns}:replicas, run field -> replica name
-- ARGV[1] run (incarnation)   ARGV[2] lease ms   ARGV[3] the run's replicas field
-- ARGV[4] replica name
--
-- The rule: one run holds a replica name's lease at a time.
--
-- Returns 1 (renewed), 0 (taken afresh: it had expired, or Redis lost it) or -1 (held by
-- another run: two processes use the same replica name).
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
if held then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 0
