//! The Lua scripts, each atomic in Redis and each in a file of its own under `scripts/`, whose
//! header is its contract (every `KEYS[i]` and `ARGV[i]`, the rule it enforces, its return
//! codes). They only touch the keys they are given (all under the namespace's hash tag), so each
//! is valid on Redis Cluster, and they read the time from Redis (`TIME`), never from a
//! replica's clock.
//!
//! A record's `tok` is the fencing token of a claimed submission (`scripts/claim.lua`); the
//! record of a claimed submission that is pending or running is its claim.
//!
//! A record's `stage` orders the states of one submission: 0 pending, 1 running, 2 lost,
//! 3 terminal (completed, failed or cancelled). A submission is named by its owner (replica
//! name `rep` and run `inc`) and its generation `gen` on that owner.

use redis::Script;

/// A script that judges replica runs: `scripts/includes/run.lua` (the epoch and the rule of a
/// dead run, written once) followed by the script's own file.
macro_rules! judging {
    ($file:literal) => {
        concat!(include_str!("scripts/includes/run.lua"), include_str!($file))
    };
}

/// `scripts/write.lua`: the fenced write of one submission's state.
pub(crate) const WRITE: &str = judging!("scripts/write.lua");
/// `scripts/lease.lua`: takes or renews a replica run's lease.
pub(crate) const LEASE: &str = judging!("scripts/lease.lua");
/// `scripts/read.lua`: one job's record as every reader must see it.
pub(crate) const READ: &str = judging!("scripts/read.lua");
/// `scripts/judge.lua`: whether a run is dead, for the listing.
pub(crate) const JUDGE: &str = judging!("scripts/judge.lua");
/// `scripts/cancel.lua`: accepts a cancel request for another run's job.
pub(crate) const CANCEL: &str = judging!("scripts/cancel.lua");
/// `scripts/release.lua`: gives a run's lease back after the flush.
pub(crate) const RELEASE: &str = include_str!("scripts/release.lua");
/// `scripts/mark_lost.lua`: marks one unfinished job of a dead run `lost`.
pub(crate) const MARK_LOST: &str = judging!("scripts/mark_lost.lua");
/// `scripts/forget.lua`: forgets a dead run with no unfinished job left.
pub(crate) const FORGET: &str = judging!("scripts/forget.lua");
/// `scripts/trim.lua`: drops an expired record's index entries.
pub(crate) const TRIM: &str = include_str!("scripts/trim.lua");
/// `scripts/page.lua`: one page of the index after a cursor.
pub(crate) const PAGE: &str = include_str!("scripts/page.lua");
/// `scripts/claim.lua`: claims an id for the namespace and hands out its fencing token.
pub(crate) const CLAIM: &str = judging!("scripts/claim.lua");
/// `scripts/unclaim.lua`: takes back a claim whose task the local worker refused.
pub(crate) const UNCLAIM: &str = include_str!("scripts/unclaim.lua");

/// The scripts, with their SHA-1s for `EVALSHA`.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) write: Script,
    pub(crate) lease: Script,
    pub(crate) read: Script,
    pub(crate) judge: Script,
    pub(crate) cancel: Script,
    pub(crate) release: Script,
    pub(crate) mark_lost: Script,
    pub(crate) forget: Script,
    pub(crate) trim: Script,
    pub(crate) page: Script,
    pub(crate) claim: Script,
    pub(crate) unclaim: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            write: Script::new(WRITE),
            lease: Script::new(LEASE),
            read: Script::new(READ),
            judge: Script::new(JUDGE),
            cancel: Script::new(CANCEL),
            release: Script::new(RELEASE),
            mark_lost: Script::new(MARK_LOST),
            forget: Script::new(FORGET),
            trim: Script::new(TRIM),
            page: Script::new(PAGE),
            claim: Script::new(CLAIM),
            unclaim: Script::new(UNCLAIM),
        }
    }
}
