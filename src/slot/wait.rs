//! Waiting for a slot's status to settle: [`Slot::wait`] and its future.

use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::atomic::{AtomicBool, Ordering};

use crate::status::TaskStatus;

use super::layout::Slot;
use super::state::{SETTLED, STATUS};

impl Slot {
    /// Waits until the status is settled and returns it.
    ///
    /// `yield_first`: yield once before parking (see [`Wait`]'s `poll`), for `wait`, whose
    /// callers often wait for many tasks in a row. Not for `cancel`: the task it just told to
    /// stop is the one to run next, and a yield on a multi-thread runtime also wakes an idle
    /// worker thread to steal it (measured: a `cancel` of a `submit` task took 1.9 µs with
    /// the yield, 0.6 µs without).
    ///
    /// Cancel safe: dropping the future loses nothing, and leaves no waker behind.
    pub(crate) fn wait(&self, yield_first: bool) -> Wait<'_> {
        Wait {
            slot: self,
            yielded: AtomicBool::new(!yield_first),
            registered: AtomicBool::new(false),
            _pinned: PhantomPinned,
        }
    }
}

/// The future of [`Slot::wait`].
///
/// `!Unpin`: once polled it stays where it is until dropped, so its address identifies its
/// waker in the slot (no other live wait can have the same address).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Wait<'a> {
    slot: &'a Slot,
    /// Whether this future yielded once already, and whether its waker is in the slot. Set
    /// through a shared reference, as a pinned `!Unpin` future is only reached through one
    /// without `unsafe`; atomic (and uncontended), so that the future stays `Sync` as well as
    /// `Send`.
    yielded: AtomicBool,
    registered: AtomicBool,
    _pinned: PhantomPinned,
}

impl Wait<'_> {
    fn key(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}

impl Future for Wait<'_> {
    type Output = TaskStatus;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskStatus> {
        // A waker this poll replaces: dropped after the guard (locals drop in reverse order).
        let _replaced: Option<Waker>;
        let key = self.key();
        let slot = self.slot;
        // Before it first parks, a `wait` yields once (it wakes itself, which tokio takes as a
        // yield: the task goes to the back of the run queue instead of its LIFO slot). Tasks
        // already queued, often the very one waited for, run first, so a task waiting for many
        // in a row usually finds each settled instead of being woken by each in turn.
        if !self.yielded.load(Ordering::Relaxed) && slot.state() & SETTLED == 0 {
            self.yielded.store(true, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut inner = slot.lock();
        let state = slot.state();
        if state & SETTLED != 0 {
            // Settling took every waker out: nothing of this future is left in the slot.
            self.registered.store(false, Ordering::Relaxed);
            let status = slot.status_from(state & STATUS, || inner.message());
            return Poll::Ready(status);
        }
        if self.registered.load(Ordering::Relaxed) {
            _replaced = inner.replace_waker(key, cx.waker());
        } else {
            _replaced = None;
            let entry = (key, cx.waker().clone());
            match &inner.waiter {
                None => inner.waiter = Some(entry),
                Some(_) => inner.extra().waiters.push(entry),
            }
            self.registered.store(true, Ordering::Relaxed);
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if !self.registered.load(Ordering::Relaxed) {
            return;
        }
        let key = self.key();
        // Dropped after the guard.
        let _removed = self.slot.lock().remove_waker(key);
    }
}
