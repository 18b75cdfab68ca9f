-- trim: drops a finished job's index entries once its record has expired.
--
-- KEYS[1] job       {ns}:job:<sha1(id)>
-- KEYS[2] index     {ns}:jobs
-- KEYS[3] expiry    {ns}:expiry
-- ARGV[1] member (sha1 of the id)
--
-- The rule: the listing keeps a job while its record exists.
--
-- Returns 1 (dropped) or 0 (the record is still there: not expired yet, or replaced by a newer
-- submission).
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('PTTL', KEYS[1]) == -1 then redis.call('ZREM', KEYS[3], ARGV[1]) end
  return 0
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
