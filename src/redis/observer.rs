//! [`MirrorObserver`]: the worker's side of the mirror. It only copies each transition into a
//! bounded queue; it never waits, never touches the network, never blocks.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};

use crate::observe::{Observer, Transition};
use crate::redis::health::HealthCell;
use crate::redis::update::Update;

/// What the observer shares with the mirror's background tasks. It holds no [`Worker`](crate::Worker),
/// so the worker (which owns the observer) and the mirror (which owns a worker handle) do not
/// keep each other alive through it.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) queue: mpsc::Sender<Update>,
    /// Set when an update could not be queued: the writer re-syncs from the registry.
    pub(crate) resync: AtomicBool,
    /// A re-sync is being written.
    pub(crate) resyncing: AtomicBool,
    /// Wakes the writer for a re-sync or the close.
    pub(crate) wake: Notify,
    pub(crate) health: HealthCell,
}

impl Link {
    /// Queues `update` without waiting; when the queue is full, schedules a re-sync instead.
    pub(crate) fn send(&self, update: Update) {
        match self.queue.try_send(update) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.health.overflows.fetch_add(1, Ordering::Relaxed);
                if !self.resync.swap(true, Ordering::AcqRel) {
                    self.wake.notify_one();
                }
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Schedules a re-sync from the registry.
    pub(crate) fn request_resync(&self) {
        self.resync.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// A re-sync is scheduled or under way.
    pub(crate) fn needs_resync(&self) -> bool {
        self.resync.load(Ordering::Acquire) || self.resyncing.load(Ordering::Acquire)
    }

    /// Transitions waiting to be written.
    pub(crate) fn depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// The [`Observer`] of a [`RedisMirror`](crate::RedisMirror), from
/// [`RedisMirror::observer`](crate::RedisMirror::observer): register it on the worker's
/// builder with [`WorkerBuilder::observer`](crate::WorkerBuilder::observer).
///
/// Each call copies the transition (id, generation, status, times) into the mirror's bounded
/// queue and returns: it never waits for Redis. When the queue is full the transition is not
/// kept; instead the mirror re-syncs every task from the worker's registry, so the cluster view
/// catches up rather than silently missing a state.
///
/// # Examples
///
/// ```
/// use background_worker::{RedisMirror, Worker};
///
/// # fn main() -> Result<(), background_worker::ClusterError> {
/// let mirror = RedisMirror::builder("redis://127.0.0.1:6379").replica("web-1").build()?;
/// let worker = Worker::builder().observer(mirror.observer()).build();
/// # drop(worker);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct MirrorObserver {
    pub(crate) link: Arc<Link>,
}

impl fmt::Debug for MirrorObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorObserver")
            .field("queue_depth", &self.link.depth())
            .finish()
    }
}

impl Observer for MirrorObserver {
    fn on_transition(&self, transition: &Transition<'_>) {
        self.link.send(Update::from_transition(transition));
    }
}
