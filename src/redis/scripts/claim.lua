-- claim: claims a job id for the whole namespace before its task is spawned, and hands out
-- its fencing token.
--
-- KEYS[1] job       {ns}:job:<sha1(id)>, the record (a hash): the claim is the record itself
-- KEYS[2] index     {ns}:jobs
-- KEYS[3] expiry    {ns}:expiry
-- KEYS[4] owned     {ns}:owned:<sha1(replica)>:<run>, the claiming run's unfinished jobs
-- KEYS[5] lease     {ns}:lease:<sha1(replica)>, the claiming run's lease
-- KEYS[6] dead      {ns}:dead:<sha1(replica)>:<run>
-- KEYS[7] epoch     {ns}:epoch
-- KEYS[8] fence     {ns}:fence, the last fencing token handed out in the namespace
-- ARGV[1] id   ARGV[2] member (sha1 of the id)   ARGV[3] replica name   ARGV[4] run
-- ARGV[5] generation   ARGV[6] submitted ms (replica clock)   ARGV[7] the namespace's key
-- prefix, `{ns}:`   ARGV[8] the caller's lease ms   ARGV[9] '1' for a claim once (a schedule's
-- tick), '0' otherwise
--
-- The rules. A claim is live while its record is pending or running and its run is alive
-- (includes/run.lua): no TTL of its own, so it lasts exactly as long as the run's lease, and
-- a dead run's claims die with it (they read `lost`). A live claim is never taken over; a
-- terminal or `lost` record is replaced (a re-submission). While the epoch is young nothing is
-- granted: Redis may have forgotten a live claim (or kept only an older, finished record of
-- the id, from an AOF that missed its last writes) that its owner is about to write again. A dead claiming run claims nothing. Asking again for the same submission
-- (replica, run, generation) is answered with its token (a retry whose first answer was lost).
--
-- A claim once (ARGV[9] = '1', a schedule's tick, whose id `NAME@MS` names one tick) is never
-- granted over any record of its id: pending, running, terminal or `lost`, the tick was
-- claimed by that record's replica, and is answered as held by it. So each tick runs at most
-- once in the namespace while its record is kept (the retention), whichever replicas ask.
--
-- The fencing token is max(last token + 1, Redis's clock in µs): strictly greater than every
-- token handed out before in the namespace while `{ns}:fence` is kept (AOF/RDB, a replica
-- promoted), and, because Redis's clock moves on, still greater after a Redis that forgot
-- everything (no persistence, FLUSHALL), as long as that clock never steps back. Tokens stay
-- below 2^53 (exact in Lua's numbers and in JSON) for centuries.
--
-- Returns {1, token} (claimed; the record is this submission, pending), {0, replica, token}
-- (held by a live claim or job of that replica; token '' if it has none), {-1, ms} (not held
-- as far as Redis knows, but the epoch is young: ask again in ms), {-2} (the record holds
-- another id: a hash collision) or {-3} (the claiming run is dead).
local job, member = KEYS[1], ARGV[2]
local now = now_ms()
local lease_ms = tonumber(ARGV[8])
if run_dead(KEYS[5], KEYS[6], KEYS[7], ARGV[4], lease_ms, now) then return {-3} end
local cur = redis.call('HMGET', job, 'id', 'rep', 'inc', 'stage', 'tok', 'gen')
if cur[1] then
  if cur[1] ~= ARGV[1] then return {-2} end
  if cur[2] == ARGV[3] and cur[3] == ARGV[4] and cur[6] == ARGV[5] and cur[5] then
    return {1, cur[5]} -- this very claim, asked again (its first answer was lost)
  end
  if ARGV[9] == '1' then return {0, cur[2] or '', cur[5] or ''} end
  local stage = tonumber(cur[4])
  if stage and stage < 2 and cur[2] and cur[3] then
    local rh = redis.sha1hex(cur[2])
    local lease = ARGV[7] .. 'lease:' .. rh
    local dead = ARGV[7] .. 'dead:' .. rh .. ':' .. cur[3]
    if not run_dead(lease, dead, KEYS[7], cur[3], lease_ms, now) then
      return {0, cur[2], cur[5] or ''}
    end
  end
end
local young, left = epoch_young(KEYS[7], lease_ms, now)
if young then return {-1, left} end
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
local token = math.max((tonumber(redis.call('GET', KEYS[8])) or 0) + 1, clock)
local text = string.format('%.0f', token)
redis.call('SET', KEYS[8], text)
redis.call('DEL', job)
redis.call('HSET', job, 'id', ARGV[1], 'rep', ARGV[3], 'inc', ARGV[4], 'gen', ARGV[5],
  'sub', ARGV[6], 'stage', 0, 'st', 'pending', 'upd', now, 'tok', text)
redis.call('ZADD', KEYS[2], ARGV[6], member)
redis.call('ZREM', KEYS[3], member)
redis.call('SADD', KEYS[4], member)
return {1, text}
