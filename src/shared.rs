//! What a worker shares with its running tasks: the registry, the counters, retention, the
//! observers, the concurrency limit, and the tracker of live futures. Every transition of a task
//! goes through here, so that counting, telling observers and waking waiters happen the same way
//! whoever makes the change.
//!
//! Tasks hold an `Arc<Shared>`, not the `Worker` handle, so that dropping the last handle is seen
//! (see `worker.rs`).

use std::sync::Arc;

use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::tokio::sync::{broadcast, Semaphore};
use crate::sync::tokio::time::Instant;

use crate::config::Config;
use crate::counters::Counters;
use crate::info::{Health, NotAccepting, TaskEvent, TaskInfo};
use crate::latch::Latch;
use crate::observe::Transition;
use crate::registry::{Refused, Registry};
use crate::report::ShutdownReport;
use crate::retention::Retention;
use crate::slot::{After, Slot, Snapshot};
use crate::status::TaskStatus;
use crate::tracker::Tracker;

/// How many events a subscriber may fall behind before it is told it lagged.
const EVENT_CAPACITY: usize = 1024;

/// `repr(C)` with the tracker and the generation counter first: they then share a cache line
/// with the `Arc`'s reference count (just before them in the allocation), and a submission
/// (which clones the `Arc` for its task, counts its future and takes a generation) and a task's
/// end (which drops both) each move one line between threads instead of three.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// Live task futures; written when a task is submitted and when its future is dropped.
    pub(crate) tracker: Tracker,
    next_generation: AtomicU64,
    pub(crate) registry: Registry,
    counters: Counters,
    retention: Option<Retention>,
    events: broadcast::Sender<TaskEvent>,
    /// Set by the first `subscribe`; until then no event is built.
    subscribed: AtomicBool,
    semaphore: Option<Semaphore>,
    /// Pending tasks waiting for a concurrency permit (only counted with a limit).
    waiting_for_permit: AtomicUsize,
    /// The shutdown report, for every `shutdown` caller.
    pub(crate) report: Latch<ShutdownReport>,
    /// Whether the TTL reaper was spawned (lazily, by the first submit: it needs a runtime).
    reaper_spawned: AtomicBool,
    pub(crate) config: Config,
}

/// What [`Shared::start`] found.
#[derive(Debug)]
pub(crate) enum Start {
    /// The task is now `Running`: run the body.
    Run,
    /// The task was cancelled before it started: finish it as `Cancelled`.
    Cancelled,
    /// The task is already terminal: do nothing more.
    Over,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            tracker: Tracker::default(),
            next_generation: AtomicU64::new(0),
            registry: Registry::new(config.max_tracked),
            counters: Counters::default(),
            retention: Retention::new(config.retention, config.max_tracked),
            events: broadcast::channel(EVENT_CAPACITY).0,
            subscribed: AtomicBool::new(false),
            semaphore: config.max_concurrent.map(Semaphore::new),
            waiting_for_permit: AtomicUsize::new(0),
            report: Latch::default(),
            reaper_spawned: AtomicBool::new(false),
            config,
        }
    }

    pub(crate) fn semaphore(&self) -> Option<&Semaphore> {
        self.semaphore.as_ref()
    }

    pub(crate) fn waiting_for_permit(&self) -> &AtomicUsize {
        &self.waiting_for_permit
    }

    pub(crate) fn next_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether anyone is told about transitions: observers, or subscribers to events.
    pub(crate) fn telling(&self) -> bool {
        !self.config.observers.is_empty() || self.subscribed.load(Ordering::Relaxed)
    }

    /// Registers a freshly made pending slot and tells observers about it. On a full registry,
    /// first removes what retention allows, then the oldest finished entries one at a time
    /// until the slot fits or none is left: only a registry of live tasks refuses.
    ///
    /// `telling`: what the slot was made with. A slot made without observers counts its
    /// `Pending` stage as told already, so there is nothing to tell and its mutex is not taken.
    pub(crate) fn admit(&self, slot: &Arc<Slot>, telling: bool) -> Result<(), Refused> {
        let mut inserted = self.registry.insert(slot);
        if matches!(inserted, Err(Refused::Full)) {
            if let Some(retention) = &self.retention {
                retention.prune(&self.registry, &self.counters, Instant::now());
                inserted = self.registry.insert(slot);
                while matches!(inserted, Err(Refused::Full))
                    && retention.make_room(&self.registry, &self.counters)
                {
                    inserted = self.registry.insert(slot);
                }
            }
        }
        let replaced = inserted?;
        if let Some(old) = &replaced {
            self.counters.remove(old.status_index(), 1);
        }
        self.counters.add(TaskStatus::Pending.index());
        drop(replaced);
        if telling {
            self.tell(slot, slot.pending());
        }
        Ok(())
    }

    /// Moves a pending task to `Running`, unless it was told to stop first.
    pub(crate) fn start(&self, slot: &Slot) -> Start {
        match slot.start(Instant::now(), self.telling()) {
            Err(true) => Start::Cancelled,
            Err(false) => Start::Over,
            Ok(after) => {
                self.counters
                    .moved(TaskStatus::Pending.index(), TaskStatus::Running.index());
                self.tell(slot, after);
                Start::Run
            }
        }
    }

    /// Writes a terminal status over a pending or running task, counts it, tells observers and
    /// wakes waiters. Does nothing if the task is terminal already. `dropped`: the status is
    /// written because the task's future was dropped unfinished.
    pub(crate) fn finish(&self, slot: &Arc<Slot>, status: TaskStatus, dropped: bool) {
        let index = status.index();
        let Some(finished) = slot.finish(status, dropped, Instant::now(), self.telling()) else {
            return;
        };
        self.counters.moved(finished.from, index);
        // Dropped outside the slot's mutex: a token drop takes its parent's lock.
        drop(finished.token);
        drop(finished.join);
        self.tell(slot, finished.after);
        if let Some(retention) = &self.retention {
            retention.finished(Arc::clone(slot), &self.registry, &self.counters);
        }
    }

    /// Tells observers every stage the slot asks for, then wakes its waiters if it settled.
    fn tell(&self, slot: &Slot, after: After) {
        let waiters = match after {
            After::Nothing => return,
            After::Wake(waiters) => Some(waiters),
            After::Tell => {
                let mut told = None;
                loop {
                    match slot.tell_next(told) {
                        Ok(snapshot) => {
                            self.deliver(slot, &snapshot);
                            told = Some(snapshot.stage);
                        }
                        Err(waiters) => break waiters,
                    }
                }
            }
        };
        if let Some(waiters) = waiters {
            waiters.wake();
        }
    }

    /// Hands one transition to the observers and the event subscribers. No lock is held.
    fn deliver(&self, slot: &Slot, snapshot: &Snapshot) {
        let times = slot.transition_times(snapshot);
        let transition = Transition {
            id: slot.id(),
            generation: slot.generation(),
            status: &snapshot.status,
            at: times.at,
            submitted_at: times.submitted_at,
            queued: times.queued,
            run_time: times.run_time,
        };
        self.config.observers.transition(&transition);
        if self.subscribed.load(Ordering::Relaxed) {
            // No receiver left is not an error: events are best effort.
            let _ = self.events.send(TaskEvent {
                id: transition.id.to_owned(),
                status: snapshot.status.clone(),
                at: times.at,
            });
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.subscribed.store(true, Ordering::Relaxed);
        self.events.subscribe()
    }

    /// Number of tasks with this status (the message of `Failed` is ignored).
    pub(crate) fn count(&self, status: &TaskStatus) -> usize {
        self.counters.get(status.index())
    }

    pub(crate) fn health(&self) -> Health {
        let count = |status: TaskStatus| self.counters.get(status.index());
        let total = self.registry.len();
        let not_accepting = if self.registry.is_closed() {
            Some(NotAccepting::ShuttingDown)
        } else if self
            .config
            .max_tracked
            .is_some_and(|max| total >= max && self.counters.finished() == 0)
        {
            Some(NotAccepting::AtCapacity)
        } else {
            None
        };
        Health {
            pending: count(TaskStatus::Pending),
            running: count(TaskStatus::Running),
            completed: count(TaskStatus::Completed),
            failed: count(TaskStatus::Failed(String::new())),
            cancelled: count(TaskStatus::Cancelled),
            total,
            accepting: not_accepting.is_none(),
            not_accepting,
            max_tracked: self.config.max_tracked,
            max_concurrent: self.config.max_concurrent,
            waiting_for_permit: self.waiting_for_permit.load(Ordering::Relaxed),
            schedules: Vec::new(), // filled in by `Worker::health`
        }
    }

    /// Snapshots of every tracked task whose status passes `keep`.
    pub(crate) fn infos(&self, mut keep: impl FnMut(&TaskStatus) -> bool) -> Vec<TaskInfo> {
        let now = Instant::now();
        self.registry
            .slots(|_| true)
            .into_iter()
            .filter_map(|slot| {
                let info = slot.info(now);
                keep(&info.status).then_some(info)
            })
            .collect()
    }

    /// Removes every terminal entry and returns how many were removed.
    pub(crate) fn remove_finished(&self) -> usize {
        let removed = self.registry.remove_finished();
        for (index, &n) in (0u8..).zip(removed.iter()) {
            if n > 0 {
                self.counters.remove(index, n);
            }
        }
        if let Some(retention) = &self.retention {
            retention.forget_removed(&self.registry);
        }
        removed.iter().sum()
    }

    /// Whether the TTL reaper is to be spawned now (once per worker, when a TTL is set).
    pub(crate) fn reaper_due(&self) -> bool {
        self.retention
            .as_ref()
            .is_some_and(|retention| retention.ttl().is_some())
            && !self.reaper_spawned.load(Ordering::Relaxed)
            && !self.reaper_spawned.swap(true, Ordering::Relaxed)
    }

    /// Removes what retention allows now; returns when the next entry expires.
    pub(crate) fn prune(&self, now: Instant) -> Option<Instant> {
        self.retention
            .as_ref()
            .and_then(|retention| retention.prune(&self.registry, &self.counters, now))
    }

    /// Waits until a finished entry is queued for retention (for the TTL reaper).
    pub(crate) async fn retention_queued(&self) {
        match &self.retention {
            Some(retention) => retention.queued().await,
            None => std::future::pending().await,
        }
    }
}
