-- judge: whether one replica run is dead, for a page of the listing.
--
-- KEYS[1] lease     {ns}:lease:<sha1(replica)>
-- KEYS[2] dead      {ns}:dead:<sha1(replica)>:<run>
-- KEYS[3] epoch     {ns}:epoch
-- ARGV[1] run (incarnation)   ARGV[2] the reader's lease ms
--
-- The rule: includes/run.lua's, decided for good.
--
-- Returns 1 (dead) or 0 (alive, or the epoch is young).
if run_dead(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), now_ms()) then return 1 end
return 0
