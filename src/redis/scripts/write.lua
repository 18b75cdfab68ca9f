-- write: writes one submission's state into its record if the fence lets it through.
--
-- KEYS[1] job      {ns}:job:<sha1(id)>, the record (a hash)
-- KEYS[2] index    {ns}:jobs, every job by submission time
-- KEYS[3] expiry   {ns}:expiry, finished jobs by their record's expiry
-- KEYS[4] owned    {ns}:owned:<sha1(replica)>:<run>, the run's unfinished jobs
-- KEYS[5] lease    {ns}:lease:<sha1(replica)>
-- KEYS[6] dead     {ns}:dead:<sha1(replica)>:<run>
-- KEYS[7] epoch    {ns}:epoch
-- ARGV[1] id       ARGV[2] member (sha1 of the id)   ARGV[3] replica name   ARGV[4] run (incarnation)
-- ARGV[5] generation            ARGV[6] submitted ms (replica clock)
-- ARGV[7] stage (0 pending, 1 running, 2 lost, 3 terminal)   ARGV[8] status name
-- ARGV[9] failure message       ARGV[10] started ms or ''    ARGV[11] finished ms or ''
-- ARGV[12] retention ms         ARGV[13] '1': write the progress fields
-- ARGV[14] fraction or ''       ARGV[15] done or ''          ARGV[16] total or ''
-- ARGV[17] progress message     ARGV[18] '1': the progress has a message
-- ARGV[19] the writer's lease ms (the epoch's grace)
-- ARGV[20] the submission's fencing token ('' for a plain, unclaimed submission)
--
-- The rules. A dead run (includes/run.lua) writes nothing, ever. Then the fencing tokens
-- (claim.lua hands them out), checked against the stored record's `tok`:
-- - a write with a lower token than the record's is refused; one with a higher token is a
--   later claimed submission and replaces the record;
-- - a write without a token never replaces a live claim (a record with a token, pending or
--   running): only a higher token does;
-- - these rules leave the record's own submission (same owner run and generation) alone;
--   otherwise (the same token, or no token on either side) the fence, checked against the
--   stored record:
-- - same owner run and generation: only a later stage is written (a terminal or `lost` record
--   never goes back), except a repeated `running` (progress);
-- - same owner run, another generation: the higher generation wins;
-- - another owner run: the later submission wins, by submission time, then replica name, then
--   run. A record never returns to an older submission.
--
-- Returns 1 (written), 0 (refused as stale), -2 (the record holds another id: a hash
-- collision, refused) or -3 (refused: the writer's run is dead).
local job, index, expiry, owned = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms()
if run_dead(KEYS[5], KEYS[6], KEYS[7], ARGV[4], tonumber(ARGV[19]), now) then return -3 end
local id, member, rep, inc = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local gen, sub, stage = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local tok = tonumber(ARGV[20])
local cur = redis.call('HMGET', job, 'id', 'rep', 'inc', 'gen', 'sub', 'stage', 'tok')
local same = false
if cur[1] then
  if cur[1] ~= id then return -2 end
  local cgen, csub, cstage, ctok = tonumber(cur[4]), tonumber(cur[5]), tonumber(cur[6]), tonumber(cur[7])
  local mine = cur[2] == rep and cur[3] == inc and cgen == gen
  if not mine and ctok and tok and tok < ctok then return 0 end
  if not mine and ctok and not tok and cstage and cstage < 2 then return 0 end
  if not mine and ctok and tok and tok > ctok then
    -- a later claimed submission: replaces the record
  elseif cgen and csub and cstage and cur[2] and cur[3] then
    if cur[2] == rep and cur[3] == inc then
      if gen < cgen then return 0 end
      if gen == cgen then
        same = true
        if stage < cstage then
          return 0
        elseif stage == cstage and stage ~= 1 then
          return 0
        end
      end
    elseif sub < csub or (sub == csub and (rep < cur[2] or (rep == cur[2] and inc <= cur[3]))) then
      return 0
    end
  end
end
if not same then redis.call('DEL', job) end
redis.call('HSET', job, 'id', id, 'rep', rep, 'inc', inc, 'gen', ARGV[5], 'sub', ARGV[6],
  'stage', ARGV[7], 'st', ARGV[8], 'upd', now)
if tok then redis.call('HSET', job, 'tok', ARGV[20]) end
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
