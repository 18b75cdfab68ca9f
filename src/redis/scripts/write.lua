-- write: writes a batch of one run's submission states, each into its record if the fence lets
-- it through.
--
-- KEYS[1] index    {ns}:jobs, every job by submission time
-- KEYS[2] expiry   {ns}:expiry, finished jobs by their record's expiry
-- KEYS[3] owned    {ns}:owned:<sha1(replica)>:<run>, the run's unfinished jobs
-- KEYS[4] lease    {ns}:lease:<sha1(replica)>
-- KEYS[5] dead     {ns}:dead:<sha1(replica)>:<run>
-- KEYS[6] epoch    {ns}:epoch
-- KEYS[6 + i] job  {ns}:job:<sha1(id)>, the record (a hash) of the batch's i-th update
-- ARGV[1] replica name   ARGV[2] run (incarnation)   ARGV[3] retention ms
-- ARGV[4] the writer's lease ms (the epoch's grace)
-- Then 16 per update, from ARGV[5 + 16 * (i - 1)]:
--   +0 id   +1 member (sha1 of the id)   +2 generation   +3 submitted ms (replica clock)
--   +4 stage (0 pending, 1 running, 2 lost, 3 terminal)   +5 status name   +6 failure message
--   +7 started ms or ''   +8 finished ms or ''   +9 '1': write the progress fields
--   +10 fraction or ''    +11 done or ''         +12 total or ''   +13 progress message
--   +14 '1': the progress has a message
--   +15 the submission's fencing token ('' for a plain, unclaimed submission)
--
-- The rules. A dead run (includes/run.lua) writes nothing, ever. Then, for each update, the
-- fencing tokens (claim.lua hands them out), checked against the stored record's `tok`:
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
-- Each written update that is not only progress is published on {ns}:events (see the end of
-- `write`), for the console's cluster-wide /events: pub/sub, at most once.
--
-- Returns one character per update, in order (a string: cheaper for the client to read than an
-- array of integers): '1' (written), '0' (refused as stale), 'c' (the record holds another id:
-- a hash collision, refused) or 'd' (refused: the writer's run is dead; then all are 'd').
local index, expiry, owned = KEYS[1], KEYS[2], KEYS[3]
local rep, inc, ret = ARGV[1], ARGV[2], tonumber(ARGV[3])
local count = #KEYS - 6
local out = {}
if run_dead(KEYS[4], KEYS[5], KEYS[6], inc, tonumber(ARGV[4]), nil) then
  return string.rep('d', count)
end
local now = now_ms()

local function write(job, a)
  local id, member = ARGV[a], ARGV[a + 1]
  local gen, sub, stage = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local tok = tonumber(ARGV[a + 15])
  local cur = redis.call('HMGET', job, 'id', 'rep', 'inc', 'gen', 'sub', 'stage', 'tok')
  local same, progress_only = false, false
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
          progress_only = stage == cstage
        end
      elseif sub < csub or (sub == csub and (rep < cur[2] or (rep == cur[2] and inc <= cur[3]))) then
        return 0
      end
    end
  end
  -- One HSET and at most one HDEL per record. A new submission's record starts empty (DEL);
  -- the same submission's keeps its fields, so the ones that no longer hold are removed.
  if cur[1] and not same then redis.call('DEL', job) end
  local status = ARGV[a + 5]
  local set = {'id', id, 'rep', rep, 'inc', inc, 'gen', ARGV[a + 2], 'sub', ARGV[a + 3],
    'stage', ARGV[a + 4], 'st', status, 'upd', now}
  local unset = {}
  local function put(field, value) set[#set + 1] = field; set[#set + 1] = value end
  local function drop(field) if same then unset[#unset + 1] = field end end
  if tok then put('tok', ARGV[a + 15]) end
  if status == 'failed' then put('msg', ARGV[a + 6]) else drop('msg') end
  if ARGV[a + 7] ~= '' then put('start', ARGV[a + 7]) end
  if ARGV[a + 8] ~= '' then put('end', ARGV[a + 8]) else drop('end') end
  if ARGV[a + 9] == '1' then
    local fields = {{'pf', a + 10}, {'pd', a + 11}, {'pt', a + 12}}
    for _, field in ipairs(fields) do
      if ARGV[field[2]] ~= '' then put(field[1], ARGV[field[2]]) else drop(field[1]) end
    end
    if ARGV[a + 14] == '1' then put('pm', ARGV[a + 13]) else drop('pm') end
  end
  redis.call('HSET', job, unpack(set))
  if #unset > 0 then redis.call('HDEL', job, unpack(unset)) end
  -- The same submission's record is indexed already, and unless it just ended it is still
  -- unfinished: no TTL, not in `expiry`, in `owned`.
  if not same then redis.call('ZADD', index, sub, member) end
  if stage == 3 then
    redis.call('PEXPIRE', job, ret)
    redis.call('ZADD', expiry, now + ret, member)
    redis.call('SREM', owned, member)
  elseif not same then
    redis.call('PERSIST', job)
    redis.call('ZREM', expiry, member)
    redis.call('SADD', owned, member)
  end
  if not progress_only then
    -- {ns}:events, beside {ns}:jobs: '<status>:<len(replica)>:<replica><id>' (at most once).
    redis.call('PUBLISH', string.sub(index, 1, -5) .. 'events',
      status .. ':' .. #rep .. ':' .. rep .. id)
  end
  return 1
end

local codes = {[1] = '1', [0] = '0', [-2] = 'c'}
for i = 1, count do
  out[i] = codes[write(KEYS[6 + i], 5 + 16 * (i - 1))]
end
return table.concat(out)
