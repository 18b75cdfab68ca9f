//! The Lua scripts, each atomic in Redis. They only touch the keys they are given (all under the
//! namespace's hash tag), so each is valid on Redis Cluster, and they read the time from Redis
//! (`TIME`), never from a replica's clock.
//!
//! A record's `stage` orders the states of one submission: 0 pending, 1 running, 2 lost,
//! 3 terminal (completed, failed or cancelled). A submission is named by its owner (replica
//! name `rep` and incarnation `inc`) and its generation `gen` on that owner.

use redis::Script;

/// Writes one submission's state into its record if the fence lets it through.
///
/// `KEYS`: job, index, expiry, owned. `ARGV`: id, member (the id's hash), rep, inc, gen,
/// submitted ms, stage, status, message, started ms or '', finished ms or '', retention ms,
/// has progress ('1'), fraction or '', done or '', total or '', progress message, has
/// progress message ('1'), reclaim ('1': a re-sync by the owner, which may turn `lost` back
/// into `running`).
///
/// Returns 1 (written), 0 (refused as stale) or -2 (the record holds another id: a hash
/// collision, refused).
///
/// The fence, checked against the stored record:
/// - same owner and generation: only a later stage is written (a terminal record never goes
///   back), except a repeated `running` (progress) and the owner's re-sync over `lost`;
/// - same owner, another generation: the higher generation wins;
/// - another owner: the later submission wins, by submission time, then replica name, then
///   incarnation. A record never returns to an older submission.
pub(crate) const WRITE: &str = r"
local job, index, expiry, owned = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, member, rep, inc = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local gen, sub, stage = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local cur = redis.call('HMGET', job, 'id', 'rep', 'inc', 'gen', 'sub', 'stage')
local same = false
if cur[1] then
  if cur[1] ~= id then return -2 end
  local cgen, csub, cstage = tonumber(cur[4]), tonumber(cur[5]), tonumber(cur[6])
  if cgen and csub and cstage and cur[2] and cur[3] then
    if cur[2] == rep and cur[3] == inc then
      if gen < cgen then return 0 end
      if gen == cgen then
        same = true
        if stage < cstage then
          if not (ARGV[19] == '1' and stage == 1 and cstage == 2) then return 0 end
        elseif stage == cstage and stage ~= 1 then
          return 0
        end
      end
    elseif sub < csub or (sub == csub and (rep < cur[2] or (rep == cur[2] and inc <= cur[3]))) then
      return 0
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not same then redis.call('DEL', job) end
redis.call('HSET', job, 'id', id, 'rep', rep, 'inc', inc, 'gen', ARGV[5], 'sub', ARGV[6],
  'stage', ARGV[7], 'st', ARGV[8], 'upd', now)
if ARGV[8] == 'failed' then redis.call('HSET', job, 'msg', ARGV[9]) else redis.call('HDEL', job, 'msg') end
if ARGV[10] ~= '' then redis.call('HSET', job, 'start', ARGV[10]) end
if ARGV[11] ~= '' then redis.call('HSET', job, 'end', ARGV[11]) else redis.call('HDEL', job, 'end') end
if ARGV[13] == '1' then
  redis.call('HDEL', job, 'pf', 'pd', 'pt', 'pm')
  if ARGV[14] ~= '' then redis.call('HSET', job, 'pf', ARGV[14]) end
  if ARGV[15] ~= '' then redis.call('HSET', job, 'pd', ARGV[15]) end
  if ARGV[16] ~= '' then redis.call('HSET', job, 'pt', ARGV[16]) end
  if ARGV[18] == '1' then redis.call('HSET', job, 'pm', ARGV[17]) end
end
redis.call('ZADD', index, sub, member)
if stage == 3 then
  local ret = tonumber(ARGV[12])
  redis.call('PEXPIRE', job, ret)
  redis.call('ZADD', expiry, now + ret, member)
  redis.call('SREM', owned, member)
else
  redis.call('PERSIST', job)
  redis.call('ZREM', expiry, member)
  redis.call('SADD', owned, member)
end
return 1
";

/// Takes or renews a replica's lease.
///
/// `KEYS`: lease, replicas. `ARGV`: incarnation, lease ms, replicas field, replica name.
/// Returns 1 (renewed), 0 (taken afresh: it had expired, or Redis lost it) or -1 (held by
/// another incarnation: two processes use the same replica name).
pub(crate) const LEASE: &str = r"
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
";

/// Gives a replica run's lease back after its jobs were flushed.
///
/// `KEYS`: lease, replicas, owned, cancels. `ARGV`: incarnation, replicas field.
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3], KEYS[4])
return 1
";

/// Marks one unfinished job of a replica run `lost` if that run's lease is gone (or, with
/// `force`, because its owner no longer has the task: it ended while its transitions were
/// dropped, and was removed before the re-sync).
///
/// `KEYS`: job, lease, expiry, owned. `ARGV`: rep, inc, retention ms, member, force ('1').
/// Returns 1 (marked), 0 (not: alive, finished, or owned by another run now).
pub(crate) const MARK_LOST: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'rep', 'inc', 'stage')
local stage = tonumber(cur[3])
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or not stage or stage >= 2 then
  redis.call('SREM', KEYS[4], ARGV[4])
  return 0
end
if ARGV[5] ~= '1' and redis.call('GET', KEYS[2]) == ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ret = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'stage', 2, 'st', 'lost', 'end', now, 'upd', now)
redis.call('PEXPIRE', KEYS[1], ret)
redis.call('ZADD', KEYS[3], now + ret, ARGV[4])
redis.call('SREM', KEYS[4], ARGV[4])
return 1
";

/// Forgets a dead replica run once none of its jobs is left unfinished.
///
/// `KEYS`: lease, replicas, owned, cancels. `ARGV`: incarnation, replicas field.
/// Returns 1 (forgotten) or 0 (alive, or jobs left).
pub(crate) const FORGET: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
if redis.call('SCARD', KEYS[3]) > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[4])
return 1
";

/// Drops a finished job's index entries once its record has expired.
///
/// `KEYS`: job, index, expiry. `ARGV`: member. Returns 1 (dropped) or 0 (the record is still
/// there: not expired yet, or replaced by a newer submission).
pub(crate) const TRIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('PTTL', KEYS[1]) == -1 then redis.call('ZREM', KEYS[3], ARGV[1]) end
  return 0
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

/// One page of the index after a cursor, oldest submission first.
///
/// `KEYS`: index. `ARGV`: cursor score, cursor member ('' for the start), limit.
/// Returns `[member, score, member, score, ...]`.
pub(crate) const PAGE: &str = r"
local score, after, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out, offset = {}, 0
while #out < 2 * limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], score, '+inf', 'WITHSCORES', 'LIMIT', offset, 256)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    if after == '' or tonumber(batch[i + 1]) > tonumber(score) or batch[i] > after then
      out[#out + 1] = batch[i]
      out[#out + 1] = batch[i + 1]
      if #out >= 2 * limit then break end
    end
  end
  offset = offset + 256
end
return out
";

/// The scripts, with their SHA-1s for `EVALSHA`.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) write: Script,
    pub(crate) lease: Script,
    pub(crate) release: Script,
    pub(crate) mark_lost: Script,
    pub(crate) forget: Script,
    pub(crate) trim: Script,
    pub(crate) page: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            write: Script::new(WRITE),
            lease: Script::new(LEASE),
            release: Script::new(RELEASE),
            mark_lost: Script::new(MARK_LOST),
            forget: Script::new(FORGET),
            trim: Script::new(TRIM),
            page: Script::new(PAGE),
        }
    }
}
