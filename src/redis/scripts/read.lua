-- read: one job's record as every reader must see it.
--
-- KEYS[1] job       {ns}:job:<sha1(id)>
-- KEYS[2] epoch     {ns}:epoch
-- ARGV[1] the namespace's key prefix, `{ns}:`   ARGV[2] the reader's lease ms
--
-- The owner run's lease and dead keys are named from the record (`{ns}:lease:<sha1(rep)>`,
-- `{ns}:dead:<sha1(rep)>:<inc>`): in the same hash-tag slot as the declared keys.
--
-- The rules: an unfinished record of a dead run (includes/run.lua) is `lost`, for every
-- reader, for good; a missing record while the epoch is young is "not known yet", never
-- "not found".
--
-- Returns {1, fields...} (the record as stored), {2, fields...} (the record, its run dead: lost),
-- {0} (no record) or {-1, ms} (no record, not known yet: the epoch's grace ends in ms).
local fields = redis.call('HGETALL', KEYS[1])
local now = now_ms()
local lease_ms = tonumber(ARGV[2])
if #fields == 0 then
  local young, left = epoch_young(KEYS[2], lease_ms, now)
  if young then return {-1, left} end
  return {0}
end
local rec = {}
for i = 1, #fields, 2 do rec[fields[i]] = fields[i + 1] end
local out = {1}
local stage = tonumber(rec['stage'])
if stage and stage < 2 and rec['rep'] and rec['inc'] then
  local rh = redis.sha1hex(rec['rep'])
  local lease = ARGV[1] .. 'lease:' .. rh
  local dead = ARGV[1] .. 'dead:' .. rh .. ':' .. rec['inc']
  if run_dead(lease, dead, KEYS[2], rec['inc'], lease_ms, now) then out[1] = 2 end
end
for i = 1, #fields do out[#out + 1] = fields[i] end
return out
