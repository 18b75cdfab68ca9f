//! The Lua scripts, each atomic in Redis and each in a file of its own under `scripts/`, whose
//! header is its contract (every `KEYS[i]` and `ARGV[i]`, the rule it enforces, its return
//! codes). They only touch the keys they are given (all under the namespace's hash tag), so each
//! is valid on Redis Cluster, and they read the time from Redis (`TIME`), never from a
//! replica's clock.
//!
//! A record's `stage` orders the states of one submission: 0 pending, 1 running, 2 lost,
//! 3 terminal (completed, failed or cancelled). A submission is named by its owner (replica
//! name `rep` and run `inc`) and its generation `gen` on that owner.

use redis::Script;

/// `scripts/write.lua`: the fenced write of one submission's state.
pub(crate) const WRITE: &str = include_str!("scripts/write.lua");
/// `scripts/lease.lua`: takes or renews a replica run's lease.
pub(crate) const LEASE: &str = include_str!("scripts/lease.lua");
/// `scripts/release.lua`: gives a run's lease back after the flush.
pub(crate) const RELEASE: &str = include_str!("scripts/release.lua");
/// `scripts/mark_lost.lua`: marks one unfinished job of a dead run `lost`.
pub(crate) const MARK_LOST: &str = include_str!("scripts/mark_lost.lua");
/// `scripts/forget.lua`: forgets a dead run with no unfinished job left.
pub(crate) const FORGET: &str = include_str!("scripts/forget.lua");
/// `scripts/trim.lua`: drops an expired record's index entries.
pub(crate) const TRIM: &str = include_str!("scripts/trim.lua");
/// `scripts/page.lua`: one page of the index after a cursor.
pub(crate) const PAGE: &str = include_str!("scripts/page.lua");

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
