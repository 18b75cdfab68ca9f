-- lease: takes or renews a replica run's lease, and tells a kept lease from one that lapsed.
--
-- KEYS[1] lease     {ns}:lease:<sha1(replica)>, holding the run's incarnation, with a TTL
-- KEYS[2] replicas  {ns}:replicas, run field -> replica name
-- KEYS[3] dead      {ns}:dead:<sha1(replica)>:<run>
-- KEYS[4] epoch     {ns}:epoch
-- KEYS[5] seen      {ns}:seen:<sha1(replica)>, the epoch's `n` at the last renewal, with
--                   the lease's TTL
-- ARGV[1] run (incarnation)   ARGV[2] lease ms   ARGV[3] the run's replicas field
-- ARGV[4] replica name        ARGV[5] '1': the caller never saw this run hold its lease
--
-- The rules: one run holds a replica name's lease at a time; a run whose lease lapsed is dead
-- (includes/run.lua) and never takes it again, so a renewal that reaches Redis late (after a
-- pause or a partition) cannot quietly re-create a lapsed lease; only a Redis that forgot (a
-- young epoch) gives a run its lease back.
--
-- Returns 1 (renewed: held without a gap, under the same epoch), 0 (taken for the first time,
-- as far as Redis knows: after a flush, a caller that saw it held re-syncs), 2 (taken again, or
-- kept across a new epoch: Redis forgot it or may have lost writes, the run lives on; re-sync),
-- -1 (held by another run: two processes use the same replica name) or -2 (the run is dead: start a new one).
local lease, replicas, dead, epoch, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local run, lease_ms = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
if redis.call('EXISTS', dead) == 1 then return -2 end
local held = redis.call('GET', lease)
if held == run then
  redis.call('PEXPIRE', lease, lease_ms)
  redis.call('HSET', replicas, ARGV[3], ARGV[4])
  -- The epoch is checked on every renewal (one INFO server): a lease kept across a new epoch
  -- (a failover whose promoted replica had the lease but not the writes acknowledged just
  -- before it) is a Redis that forgot. Compared with the epoch this lease last saw, not with
  -- whether this call began it: another replica's script may have begun it first.
  epoch_young(epoch, lease_ms, now)
  local n = epoch_n(epoch)
  local last = redis.call('GET', seen)
  redis.call('SET', seen, n, 'PX', lease_ms)
  if last ~= n then return 2 end
  return 1
end
if ARGV[5] == '1' and redis.call('HEXISTS', replicas, ARGV[3]) == 0 then
  if held then return -1 end
  redis.call('SET', lease, run, 'PX', lease_ms)
  redis.call('HSET', replicas, ARGV[3], ARGV[4])
  epoch_young(epoch, lease_ms, now)
  redis.call('SET', seen, epoch_n(epoch), 'PX', lease_ms)
  return 0
end
if run_dead(lease, dead, epoch, run, lease_ms, now) then return -2 end
redis.call('SET', lease, run, 'PX', lease_ms)
redis.call('HSET', replicas, ARGV[3], ARGV[4])
epoch_young(epoch, lease_ms, now)
redis.call('SET', seen, epoch_n(epoch), 'PX', lease_ms)
return 2
