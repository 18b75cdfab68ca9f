-- includes/run.lua: the rules every script that judges a replica run shares, prepended to
-- write, lease, read, judge, cancel, mark_lost and forget (never copied into them).
--
-- The epoch. `{ns}:epoch` (a hash) holds `rid`, the Redis `run_id` it was set under, `since`,
-- when the epoch began (ms, Redis clock), `grace`, the longest lease seen since (ms), and `n`,
-- a counter bumped at every new epoch (its identity: two epochs can begin in one ms). A
-- different `run_id` (Redis restarted, even one that reloaded its data from AOF or RDB, or a
-- failover to another server process) or a missing key (FLUSHALL, a fresh empty Redis) starts a
-- new epoch at that moment. While the epoch is younger than `grace`, Redis may have forgotten
-- leases and records that were there: nobody is judged dead, and a missing record is "not known
-- yet".
--
-- A run is dead once its lease key no longer holds it (the lease expired on Redis's clock, or a
-- later run of the same replica holds it) and the epoch is at least one lease old. The decision
-- is written down (`{ns}:dead:<sha1(replica)>:<run>`, kept DEAD_TTL) and is final: a dead run
-- never takes its lease again, and none of its writes changes any record again.

local DEAD_TTL = 86400000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether the epoch is younger than its grace (starting a new epoch if Redis changed).
local function epoch_young(epoch, lease_ms, now)
  local rid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
  local cur = redis.call('HMGET', epoch, 'rid', 'since', 'grace')
  local since, grace = tonumber(cur[2]), tonumber(cur[3]) or 0
  if cur[1] ~= rid or not since then
    since = now
    if lease_ms > grace then grace = lease_ms end
    redis.call('HSET', epoch, 'rid', rid, 'since', since, 'grace', grace)
    redis.call('HINCRBY', epoch, 'n', 1)
  elseif lease_ms > grace then
    grace = lease_ms
    redis.call('HSET', epoch, 'grace', grace)
  end
  return now - since < grace, since + grace - now
end

-- The current epoch's identity (`n`; '0' for an epoch begun before `n` was kept).
local function epoch_n(epoch)
  return redis.call('HGET', epoch, 'n') or '0'
end

-- Whether the run `run` (its lease key, its dead key) is dead; decides it for good if so.
-- `now` may be nil: it is read from Redis only when needed (the run's lease held is the fast
-- path of every write).
local function run_dead(lease, dead, epoch, run, lease_ms, now)
  local held = redis.call('GET', lease)
  if held == run then return false end
  if redis.call('EXISTS', dead) == 1 then return true end
  now = now or now_ms()
  if not held and epoch_young(epoch, lease_ms, now) then return false end
  redis.call('SET', dead, now, 'PX', DEAD_TTL)
  return true
end

