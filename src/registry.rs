//! The registry: one `DashMap` from task id to entry. This is the only module that touches
//! the map or holds its guards.
//!
//! # Locking rules
//!
//! 1. Every method here is synchronous. A guard (`Ref`, `RefMut`, `Entry`, `RefMulti`) lives only
//!    inside one method body and is dropped before the method returns, so no guard can be held
//!    across an `.await` (clippy's `await_holding_invalid_type`, configured in `clippy.toml`,
//!    checks the rest of the crate).
//! 2. While a guard is held, nothing calls back into the map, and nothing runs code that might:
//!    no user code, no `JoinHandle` or `CancellationToken` drop (a token drop takes the root's
//!    lock), no `tokio::spawn` (spawning on a runtime that is shutting down drops the future on
//!    the spot, and our task's drop guard writes into the map). Values that need any of that are
//!    moved out of the entry and dropped or used after the guard is gone.
//! 3. Lock order: the worker's admission gate (`Worker` internals) → one shard of the map →
//!    the per-status counters (atomics, no lock). Nothing here ever takes the gate.
//!
//! # Invariants
//!
//! - An entry is inserted as `Pending` before its task is spawned, and every entry reaches exactly
//!   one terminal status, after which its status never changes ([`Registry::finish`] is the only
//!   writer of terminal statuses, and it writes only over `Pending` or `Running`).
//! - Every entry carries a generation number, unique per submission. A task's bookkeeping only
//!   touches the entry of its own generation, so a task that finishes after its id was
//!   re-submitted can never overwrite the newer task's status.
//! - A live (pending or running) entry is never removed or replaced: `insert` refuses it and
//!   `remove_finished` skips it, both under the shard lock that also guards its status.
//! - `counts[i]` equals the number of entries whose status has index `i`, whenever no transition
//!   is in progress (each transition updates the counters under the entry's shard lock).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::latch::Latch;
use crate::status::TaskStatus;

/// The registry of tracked tasks. See the module docs for the locking rules.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: DashMap<Arc<str>, Entry>,
    counts: [AtomicUsize; 5],
    next_generation: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    status: TaskStatus,
    /// `Some` while the task is pending or running; taken out when it becomes terminal.
    live: Option<Live>,
}

/// What only a live task needs.
#[derive(Debug)]
struct Live {
    token: CancellationToken,
    /// Set right after spawning; taken by `shutdown` to drain the task.
    join: Option<JoinHandle<TaskStatus>>,
    abort: Option<AbortHandle>,
    /// Created on demand by `wait` and `cancel`, completed by `finish`.
    waiters: Option<Arc<Waiters>>,
}

/// Everyone waiting for one task's terminal status.
pub(crate) type Waiters = Latch<TaskStatus>;

/// Why `insert` refused an id.
#[derive(Debug)]
pub(crate) struct Occupied;

/// What `start` found.
#[derive(Debug)]
pub(crate) enum Start {
    /// The entry is now `Running`: run the body.
    Run,
    /// The task was cancelled before it started: finish it as `Cancelled`.
    Cancelled,
    /// The entry is already terminal (or gone): do nothing more.
    Over(TaskStatus),
}

/// What `target` found for `wait` and `cancel`.
#[derive(Debug)]
pub(crate) enum Target {
    Finished(TaskStatus),
    Live {
        generation: u64,
        token: CancellationToken,
        waiters: Arc<Waiters>,
    },
}

/// A live task handed to the shutdown drain.
#[derive(Debug)]
pub(crate) struct Draining {
    pub(crate) id: Arc<str>,
    pub(crate) join: JoinHandle<TaskStatus>,
}

/// What `finish` took out of an entry; dropped after the guard is released.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The entry's terminal status (ours, or the one that was already there).
    pub(crate) status: TaskStatus,
    /// The task's join handle, if the drain had not taken it yet.
    pub(crate) join: Option<JoinHandle<TaskStatus>>,
}

impl Registry {
    /// Registers `id` as `Pending`, replacing a terminal entry, and returns its generation.
    /// Refuses if a pending or running entry holds the id.
    pub(crate) fn insert(&self, id: Arc<str>, token: CancellationToken) -> Result<u64, Occupied> {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let fresh = Entry {
            generation,
            status: TaskStatus::Pending,
            live: Some(Live {
                token,
                join: None,
                abort: None,
                waiters: None,
            }),
        };
        match self.map.entry(id) {
            MapEntry::Occupied(mut occupied) => {
                if occupied.get().live.is_some() {
                    return Err(Occupied);
                }
                let old = std::mem::replace(occupied.get_mut(), fresh);
                self.counts[old.status.index()].fetch_sub(1, Ordering::Relaxed);
            }
            MapEntry::Vacant(vacant) => {
                vacant.insert(fresh);
            }
        }
        self.counts[TaskStatus::Pending.index()].fetch_add(1, Ordering::Relaxed);
        Ok(generation)
    }

    /// Stores the join handle of a freshly spawned task. Hands it back if the task already
    /// finished, so the caller drops it outside the guard.
    pub(crate) fn attach(
        &self,
        id: &str,
        generation: u64,
        join: JoinHandle<TaskStatus>,
    ) -> Option<JoinHandle<TaskStatus>> {
        let mut entry = match self.map.get_mut(id) {
            Some(entry) if entry.generation == generation => entry,
            _ => return Some(join),
        };
        match entry.live.as_mut() {
            Some(live) => {
                live.abort = Some(join.abort_handle());
                live.join = Some(join);
                None
            }
            None => Some(join),
        }
    }

    /// Moves a pending task to `Running`, unless it was cancelled first.
    pub(crate) fn start(&self, id: &str, generation: u64) -> Start {
        let Some(mut entry) = self.map.get_mut(id) else {
            return Start::Over(TaskStatus::Cancelled);
        };
        if entry.generation != generation || entry.status != TaskStatus::Pending {
            return Start::Over(entry.status.clone());
        }
        let cancelled = entry.live.as_ref().is_none_or(|live| live.token.is_cancelled());
        if cancelled {
            return Start::Cancelled;
        }
        entry.status = TaskStatus::Running;
        self.counts[TaskStatus::Pending.index()].fetch_sub(1, Ordering::Relaxed);
        self.counts[TaskStatus::Running.index()].fetch_add(1, Ordering::Relaxed);
        Start::Run
    }

    /// Writes a terminal status over a pending or running entry of this generation, wakes its
    /// waiters and returns the entry's terminal status. If the entry is already terminal (or gone),
    /// nothing changes and the status it holds is returned.
    pub(crate) fn finish(&self, id: &str, generation: u64, status: TaskStatus) -> Finished {
        debug_assert!(status.is_terminal());
        let live = {
            let Some(mut entry) = self.map.get_mut(id) else {
                return Finished { status, join: None };
            };
            if entry.generation != generation || entry.live.is_none() {
                return Finished {
                    status: entry.status.clone(),
                    join: None,
                };
            }
            self.counts[entry.status.index()].fetch_sub(1, Ordering::Relaxed);
            self.counts[status.index()].fetch_add(1, Ordering::Relaxed);
            entry.status = status.clone();
            entry.live.take()
        }; // guard dropped here: waking, token and handle drops happen outside it
        let mut join = None;
        if let Some(live) = live {
            if let Some(waiters) = live.waiters {
                waiters.set(status.clone());
            }
            join = live.join;
        }
        Finished { status, join }
    }

    /// The current status of `id`.
    pub(crate) fn status(&self, id: &str) -> Option<TaskStatus> {
        self.map.get(id).map(|entry| entry.status.clone())
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// Number of tracked entries, whatever their status.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Number of entries with the status of this index (see `TaskStatus::index`).
    pub(crate) fn count(&self, status: &TaskStatus) -> usize {
        self.counts[status.index()].load(Ordering::Relaxed)
    }

    /// Finds `id` for `wait` or `cancel`: its terminal status, or what is needed to wait for it.
    pub(crate) fn target(&self, id: &str) -> Option<Target> {
        let mut entry = self.map.get_mut(id)?;
        let generation = entry.generation;
        let target = match entry.live.as_mut() {
            None => Target::Finished(entry.status.clone()),
            Some(live) => Target::Live {
                generation,
                token: live.token.clone(),
                waiters: live.waiters.get_or_insert_with(Default::default).clone(),
            },
        };
        Some(target)
    }

    /// The abort handle of a live task of this generation.
    pub(crate) fn abort_handle(&self, id: &str, generation: u64) -> Option<AbortHandle> {
        let entry = self.map.get(id)?;
        if entry.generation != generation {
            return None;
        }
        entry.live.as_ref()?.abort.clone()
    }

    /// Takes the join handle of every live task, for the shutdown drain.
    pub(crate) fn take_live(&self) -> Vec<Draining> {
        let mut draining = Vec::new();
        for mut entry in self.map.iter_mut() {
            if let Some(join) = entry.live.as_mut().and_then(|live| live.join.take()) {
                draining.push(Draining {
                    id: Arc::clone(entry.key()),
                    join,
                });
            }
        }
        draining
    }

    /// Removes every terminal entry and returns how many were removed. Live entries stay,
    /// whatever this races with: the check and the removal happen under one shard lock.
    pub(crate) fn remove_finished(&self) -> usize {
        let mut removed = 0;
        self.map.retain(|_, entry| {
            if entry.live.is_some() {
                return true;
            }
            self.counts[entry.status.index()].fetch_sub(1, Ordering::Relaxed);
            removed += 1;
            false
        });
        removed
    }
}
