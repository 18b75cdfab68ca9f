//! Counts the task futures that are still alive, so that `shutdown` can wait until none is.
//!
//! The same idea as tokio-util's `TaskTracker`, kept inside the worker's shared state: a task's
//! drop guard already holds that state, so counting costs one atomic add when the task is
//! submitted and one when its future is dropped, and no extra reference count.

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::tokio::sync::Notify;

/// Set in `state` once the tracker is closed; the count of live futures is `state >> 1`.
const CLOSED: usize = 1;

#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Tracker {
    /// First: see `Shared`, which keeps it next to its `Arc`'s reference count.
    state: AtomicUsize,
    idle: Notify,
}

impl Tracker {
    /// One more live future (made before its task is registered, so the count never reaches
    /// zero while a submission is under way).
    pub(crate) fn enter(&self) {
        self.state.fetch_add(2, Ordering::Relaxed);
    }

    /// One live future fewer; wakes `wait` when it was the last one after `close`.
    pub(crate) fn exit(&self) {
        // Release: whatever the future did happens before `wait` sees the count drop.
        if self.state.fetch_sub(2, Ordering::Release) == 2 | CLOSED {
            self.idle.notify_waiters();
        }
    }

    /// From now on, the count reaching zero wakes `wait`.
    pub(crate) fn close(&self) {
        if self.state.fetch_or(CLOSED, Ordering::AcqRel) == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Completes once the tracker is closed and no future is alive.
    ///
    /// Cancel safe: dropping the future loses nothing.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.idle.notified();
            if self.state.load(Ordering::Acquire) == CLOSED {
                return;
            }
            notified.await;
        }
    }
}
