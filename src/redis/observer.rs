//! [`MirrorObserver`]: the worker's side of the mirror. It only merges each transition into a
//! bounded queue (`queue.rs`); it never waits, never touches the network, never blocks.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::observe::{Observer, Transition};
use crate::redis::shared::Link;
use crate::status::TaskStatus;

/// The [`Observer`] of a [`RedisMirror`](crate::RedisMirror), from
/// [`RedisMirror::observer`](crate::RedisMirror::observer): register it on the worker's
/// builder with [`WorkerBuilder::observer`](crate::WorkerBuilder::observer).
///
/// Each call merges the transition (status, times) into its submission's entry in the
/// mirror's bounded queue, or adds one (copying the id), and returns: it never waits for
/// Redis, and it wakes the writer only when the queue was empty. When the queue is full the
/// transition is not kept; instead the mirror re-syncs every task from the worker's registry,
/// so the cluster view catches up rather than silently missing a state.
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
        if matches!(transition.status, TaskStatus::Pending) {
            self.link
                .generations
                .fetch_max(transition.generation + 1, Ordering::Relaxed);
        }
        self.link.send_transition(transition);
    }
}
