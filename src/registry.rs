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
//! 3. Lock order: the worker's admission gate (in `worker.rs`) → the retention queue → one shard
//!    of the map → a task's `Live` handles, its progress cell, or the event channel's lock. Never
//!    the other way round: `finish` pushes onto the retention queue, and reads the `Live` handles
//!    it took out, only after its shard guard is gone.
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
//! - `tracked` is the number of entries: incremented (against the capacity) under the shard lock
//!   of a new entry, decremented with every removal. So entries never exceed the capacity.
//! - Events of one task are sent under its shard lock, so subscribers see them in order.
//! - A task's progress is frozen under the shard lock in the same step that makes it terminal.
//! - With retention, every terminal entry has an item in the retention queue (items of entries
//!   since removed or replaced are stale and skipped), oldest first.

use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};

use crate::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::sync::dashmap::mapref::entry::Entry as MapEntry;
use crate::sync::dashmap::DashMap;
use crate::sync::tokio::sync::{broadcast, Notify};
use crate::sync::tokio::task::{AbortHandle, JoinHandle};
use crate::sync::tokio_util::sync::CancellationToken;
use tokio::time::Instant;

use crate::info::{TaskEvent, TaskInfo};
use crate::latch::Latch;
use crate::progress::ProgressCell;
use crate::status::TaskStatus;
use crate::times::Times;

/// How many events a subscriber may fall behind before it is told it lagged.
const EVENT_CAPACITY: usize = 1024;

/// The registry of tracked tasks. See the module docs for the locking rules.
#[derive(Debug)]
pub(crate) struct Registry {
    map: DashMap<Arc<str>, Entry>,
    counts: [AtomicUsize; 5],
    /// The number of entries, kept in step with the map so that the capacity check is one atomic
    /// operation under the shard lock of the entry being inserted.
    tracked: AtomicUsize,
    next_generation: AtomicU64,
    events: broadcast::Sender<TaskEvent>,
    /// Set by the first `subscribe`; until then no event is built or sent.
    subscribed: AtomicBool,
    retention: Option<Retention>,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    status: TaskStatus,
    /// `Some` while the task is pending or running; taken out when it becomes terminal. Behind an
    /// `Arc` so that finished entries, which can be many, do not carry its room, and so that the
    /// submitter can attach the join handle without looking the id up again.
    live: Option<Arc<Live>>,
    times: Times,
    /// Only tasks from `submit_with_context` can report progress.
    progress: Option<Arc<ProgressCell>>,
}

/// What only a live task needs.
#[derive(Debug)]
pub(crate) struct Live {
    token: CancellationToken,
    /// Lock order: a shard guard may be held while taking this lock, never the other way round.
    handles: Mutex<Handles>,
}

#[derive(Debug, Default)]
struct Handles {
    /// Set right after spawning; taken by `shutdown` to drain the task, or by `finish`.
    join: Option<JoinHandle<TaskStatus>>,
    abort: Option<AbortHandle>,
    /// Created on demand by `wait` and `cancel`, completed by `finish`.
    waiters: Option<Arc<Waiters>>,
}

impl Live {
    fn handles(&self) -> MutexGuard<'_, Handles> {
        lock(&self.handles)
    }

    /// Stores the join handle of the freshly spawned task. If the task already finished, `finish`
    /// has let go of this `Live`, and the handle is dropped with the caller's last reference.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Aborts the task, if its handle is attached (it always is once `submit` returned).
    pub(crate) fn abort(&self) {
        let abort = self.handles().abort.clone();
        if let Some(abort) = abort {
            abort.abort();
        }
    }

    pub(crate) fn attach(&self, join: JoinHandle<TaskStatus>) {
        let mut handles = self.handles();
        handles.abort = Some(join.abort_handle());
        handles.join = Some(join);
    }
}

/// Everyone waiting for one task's terminal status.
pub(crate) type Waiters = Latch<TaskStatus>;

/// Automatic removal of finished entries: after a time to live, and beyond a maximum count.
#[derive(Debug)]
struct Retention {
    ttl: Option<Duration>,
    max_finished: Option<usize>,
    /// Finished entries, oldest first.
    queue: Mutex<VecDeque<Expiry>>,
    /// Wakes the TTL reaper when the queue gets its first item.
    wake: Notify,
}

#[derive(Debug)]
struct Expiry {
    id: Arc<str>,
    generation: u64,
    finished: Instant,
}

/// Limits fixed at build time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    pub(crate) ttl: Option<Duration>,
    pub(crate) max_finished: Option<usize>,
}

/// Why `insert` refused an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A pending or running task holds the id.
    Occupied,
    /// The id is new and the registry is at capacity.
    Full,
}

/// What `start` found.
#[derive(Debug)]
pub(crate) enum Start {
    /// The entry is now `Running` (since the time in these times): run the body.
    Run(Times),
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
        live: Arc<Live>,
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
    /// The entry's times, if this call wrote the terminal status.
    pub(crate) written: Option<Times>,
    /// Waiting `wait` and `cancel` calls, to wake once observers have seen the change.
    pub(crate) waiters: Option<Arc<Waiters>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Self {
        let retention = (limits.ttl.is_some() || limits.max_finished.is_some()).then(|| Retention {
            ttl: limits.ttl,
            max_finished: limits.max_finished,
            queue: Mutex::default(),
            wake: Notify::new(),
        });
        Self {
            map: DashMap::new(),
            counts: Default::default(),
            tracked: AtomicUsize::new(0),
            next_generation: AtomicU64::new(0),
            events: broadcast::channel(EVENT_CAPACITY).0,
            subscribed: AtomicBool::new(false),
            retention,
        }
    }

    /// Registers `id` as `Pending`, replacing a terminal entry, and returns its generation.
    ///
    /// Refuses if a pending or running entry holds the id, or if a new entry would take the
    /// number of entries past `capacity` (replacing a terminal entry needs no room).
    pub(crate) fn insert(
        &self,
        id: Arc<str>,
        token: CancellationToken,
        progress: Option<Arc<ProgressCell>>,
        capacity: Option<usize>,
    ) -> Result<(u64, Arc<Live>, Times), Refused> {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let live = Arc::new(Live {
            token,
            handles: Mutex::default(),
        });
        let times = Times::now();
        let fresh = Entry {
            generation,
            status: TaskStatus::Pending,
            live: Some(Arc::clone(&live)),
            times,
            progress,
        };
        let entry = match self.map.entry(id) {
            MapEntry::Occupied(mut occupied) => {
                if occupied.get().live.is_some() {
                    return Err(Refused::Occupied);
                }
                let old_status = std::mem::replace(occupied.get_mut(), fresh).status;
                self.counts[old_status.index()].fetch_sub(1, Ordering::Relaxed);
                occupied.into_ref()
            }
            MapEntry::Vacant(vacant) => {
                let room = |n: usize| capacity.is_none_or(|capacity| n < capacity).then_some(n + 1);
                if self
                    .tracked
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, room)
                    .is_err()
                {
                    return Err(Refused::Full);
                }
                vacant.insert(fresh)
            }
        };
        self.counts[TaskStatus::Pending.index()].fetch_add(1, Ordering::Relaxed);
        self.emit(entry.key(), &TaskStatus::Pending);
        Ok((generation, live, times))
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
        entry.times.start(Instant::now());
        self.counts[TaskStatus::Pending.index()].fetch_sub(1, Ordering::Relaxed);
        self.counts[TaskStatus::Running.index()].fetch_add(1, Ordering::Relaxed);
        self.emit(entry.key(), &TaskStatus::Running);
        Start::Run(entry.times)
    }

    /// Writes a terminal status over a pending or running entry of this generation, wakes its
    /// waiters and returns the entry's terminal status. If the entry is already terminal (or gone),
    /// nothing changes and the status it holds is returned.
    pub(crate) fn finish(&self, id: &str, generation: u64, status: TaskStatus) -> Finished {
        debug_assert!(status.is_terminal());
        let (key, live, finished, times) = {
            let Some(mut entry) = self.map.get_mut(id) else {
                return Finished {
                    status,
                    join: None,
                    written: None,
                    waiters: None,
                };
            };
            if entry.generation != generation || entry.live.is_none() {
                return Finished {
                    status: entry.status.clone(),
                    join: None,
                    written: None,
                    waiters: None,
                };
            }
            self.counts[entry.status.index()].fetch_sub(1, Ordering::Relaxed);
            self.counts[status.index()].fetch_add(1, Ordering::Relaxed);
            let finished = Instant::now();
            entry.status = status.clone();
            entry.times.finish(finished);
            if let Some(progress) = &entry.progress {
                progress.freeze();
            }
            self.emit(entry.key(), &status);
            let key = self.retention.is_some().then(|| Arc::clone(entry.key()));
            (key, entry.live.take(), finished, entry.times)
        }; // guard dropped here: waking, retention, token and handle drops happen outside it
        let (key, live, finished, times) = (key, live, finished, times);
        let (mut join, mut waiters) = (None, None);
        if let Some(live) = live {
            let mut handles = live.handles();
            waiters = handles.waiters.take();
            join = handles.join.take();
        }
        if let (Some(retention), Some(id)) = (&self.retention, key) {
            let was_empty = {
                let mut queue = lock(&retention.queue);
                queue.push_back(Expiry {
                    id,
                    generation,
                    finished,
                });
                queue.len() == 1
            };
            if was_empty && retention.ttl.is_some() {
                retention.wake.notify_one();
            }
            if retention.max_finished.is_some() {
                self.prune(Instant::now());
            }
        }
        Finished {
            status,
            join,
            written: Some(times),
            waiters,
        }
    }

    /// Sends an event if anyone ever subscribed. Called under the entry's shard lock.
    fn emit(&self, id: &str, status: &TaskStatus) {
        if self.subscribed.load(Ordering::Relaxed) {
            let _ = self.events.send(TaskEvent {
                id: id.to_owned(),
                status: status.clone(),
                at: SystemTime::now(),
            });
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.subscribed.store(true, Ordering::Relaxed);
        self.events.subscribe()
    }

    /// The current status of `id`.
    pub(crate) fn status(&self, id: &str) -> Option<TaskStatus> {
        self.map.get(id).map(|entry| entry.status.clone())
    }

    /// A snapshot of `id`.
    pub(crate) fn info(&self, id: &str) -> Option<TaskInfo> {
        let entry = self.map.get(id)?;
        Some(entry.info(id, Instant::now()))
    }

    /// Snapshots of every entry whose status passes `keep`. Guards are held one shard at a time
    /// and all are gone before this returns.
    pub(crate) fn infos(&self, mut keep: impl FnMut(&TaskStatus) -> bool) -> Vec<TaskInfo> {
        let now = Instant::now();
        self.map
            .iter()
            .filter(|entry| keep(&entry.status))
            .map(|entry| entry.info(entry.key(), now))
            .collect()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// Number of tracked entries, whatever their status.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Number of entries with this status (the message of `Failed` is ignored).
    pub(crate) fn count(&self, status: &TaskStatus) -> usize {
        self.counts[status.index()].load(Ordering::Relaxed)
    }

    /// Finds `id` for `wait` or `cancel`: its terminal status, or what is needed to wait for it.
    pub(crate) fn target(&self, id: &str) -> Option<Target> {
        let entry = self.map.get(id)?;
        let target = match &entry.live {
            None => Target::Finished(entry.status.clone()),
            Some(live) => Target::Live {
                generation: entry.generation,
                waiters: Arc::clone(live.handles().waiters.get_or_insert_with(Default::default)),
                live: Arc::clone(live),
            },
        };
        Some(target)
    }

    /// Takes the join handle of every live task, for the shutdown drain.
    pub(crate) fn take_live(&self) -> Vec<Draining> {
        let mut draining = Vec::new();
        for entry in self.map.iter() {
            if let Some(join) = entry.live.as_ref().and_then(|live| live.handles().join.take()) {
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
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        // `retain` keeps the table's room; give it back once most of it is empty.
        if removed > 0 && self.map.len().saturating_mul(4) < self.map.capacity() {
            self.map.shrink_to_fit();
        }
        if let Some(retention) = &self.retention {
            // Every queued entry that was just removed is now stale; keep the queue small.
            let mut queue = lock(&retention.queue);
            queue.retain(|expiry| {
                self.map
                    .get(&expiry.id)
                    .is_some_and(|entry| entry.generation == expiry.generation)
            });
        }
        removed
    }

    /// Removes finished entries past their time to live or beyond the maximum count, oldest
    /// first. Returns when the next one expires, if a time to live is set.
    pub(crate) fn prune(&self, now: Instant) -> Option<Instant> {
        let retention = self.retention.as_ref()?;
        let mut queue = lock(&retention.queue);
        while let Some(oldest) = queue.front() {
            let expired = retention.ttl.is_some_and(|ttl| oldest.finished + ttl <= now);
            let excess = retention
                .max_finished
                .is_some_and(|max| self.finished_count() > max);
            if !expired && !excess {
                break;
            }
            if let Some(expiry) = queue.pop_front() {
                self.remove_if_finished(&expiry.id, expiry.generation);
            }
        }
        let ttl = retention.ttl?;
        queue.front().map(|oldest| oldest.finished + ttl)
    }

    /// Waits until a finished entry is queued for retention (for the TTL reaper).
    pub(crate) async fn retention_queued(&self) {
        match &self.retention {
            Some(retention) => retention.wake.notified().await,
            None => std::future::pending().await,
        }
    }

    fn remove_if_finished(&self, id: &str, generation: u64) {
        let removed = self.map.remove_if(id, |_, entry| {
            entry.generation == generation && entry.live.is_none()
        });
        if let Some((_, entry)) = removed {
            self.counts[entry.status.index()].fetch_sub(1, Ordering::Relaxed);
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Number of terminal entries (counters 2..5 are the terminal statuses).
    fn finished_count(&self) -> usize {
        self.counts[TaskStatus::Completed.index()..]
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }
}

impl Entry {
    fn info(&self, id: &str, now: Instant) -> TaskInfo {
        let times = &self.times;
        let (started, finished) = (times.started(), times.finished());
        let queued_until = started.or(finished).unwrap_or(now);
        TaskInfo {
            id: id.to_owned(),
            generation: self.generation,
            status: self.status.clone(),
            submitted_at: times.wall(times.submitted()),
            started_at: started.map(|at| times.wall(at)),
            finished_at: finished.map(|at| times.wall(at)),
            queued: queued_until.saturating_duration_since(times.submitted()),
            run_time: started.map(|at| finished.unwrap_or(now).saturating_duration_since(at)),
            progress: self.progress.as_ref().and_then(|cell| cell.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finished entries can number in the millions: keep an entry small (see BENCHMARKS.md for
    /// the measured bytes per entry).
    #[test]
    fn an_entry_stays_small() {
        let size = std::mem::size_of::<(Arc<str>, Entry)>();
        assert!(size <= 104, "an entry with its key takes {size} bytes");
    }
}
