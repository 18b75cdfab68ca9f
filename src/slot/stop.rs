//! Telling a task to stop: the mark, the token of a context task (made on first use), the
//! waits of its body for the stop, and aborts.

use std::task::Waker;

use crate::sync::atomic::Ordering;
use crate::sync::tokio::task::{AbortHandle, JoinHandle};
use crate::sync::tokio_util::sync::CancellationToken;

use super::layout::Slot;
use super::state::{is_terminal, ABORTED_AT_DEADLINE, DROPPED, STOP};
use super::waiters::Wakers;

/// What [`Slot::stop`] took out of the slot, to signal once the mutex is released.
#[must_use]
#[derive(Debug, Default)]
pub(crate) struct Stop {
    token: Option<CancellationToken>,
    waiters: Option<Wakers>,
}

impl Stop {
    /// Cancels the task's token, if it has one, and wakes the waits for its stop.
    pub(crate) fn signal(self) {
        if let Some(token) = self.token {
            token.cancel();
        }
        if let Some(waiters) = self.waiters {
            waiters.wake();
        }
    }
}

/// What [`Slot::poll_stopped`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StopPoll {
    /// The task was told to stop, or is over.
    Yes,
    /// Not yet: the waker is in the slot, [`Slot::stop`] wakes it.
    Waiting,
    /// Not yet, and the task has a token: wait on that (the body may cancel it itself).
    HasToken,
}

impl Slot {
    /// Tells a live task to stop. It is marked (so that it never starts, and ends cancelled
    /// whatever it returns). A context task hands over, for the caller to signal once no lock
    /// is held ([`Stop::signal`]), its token if one was made and the waits for its stop
    /// ([`Slot::poll_stopped`]). The token is handed over rather than cloned: the slot has no
    /// more use for it (a token asked for after the mark is made cancelled), and a clone and a
    /// drop are a lock of the token's each. A task from `submit` is aborted (at its next
    /// `.await`, or at once if it waits to start).
    ///
    /// The abort is made under the mutex: it only marks the task and schedules it, it drops
    /// nothing and takes none of this crate's locks.
    pub(crate) fn stop(&self) -> Stop {
        let mut inner = self.lock();
        let state = self.state();
        if is_terminal(state) {
            return Stop::default();
        }
        self.state.store(state | STOP, Ordering::Release);
        if self.context {
            return Stop {
                token: inner.token.take(),
                waiters: inner.take_stop_waiters(),
            };
        }
        match &inner.join {
            Some(join) => join.abort(),
            None => inner.abort_requested = true,
        }
        Stop::default()
    }

    /// Whether a context task was told to stop or is over; if not, leaves `waker` to be woken
    /// when it is (see the rules above), unless the task has a token to wait on instead.
    ///
    /// Told to stop, a task is marked before anything else happens to it, so a body that looks
    /// once the stop began takes no lock.
    pub(crate) fn poll_stopped(&self, waker: &Waker) -> StopPoll {
        let stopped = |state: u8| state & STOP != 0 || is_terminal(state);
        if stopped(self.state()) {
            return StopPoll::Yes;
        }
        let mut inner = self.lock();
        if stopped(self.state()) {
            return StopPoll::Yes;
        }
        if inner.token.is_some() {
            return StopPoll::HasToken;
        }
        inner.add_stop_waiter(waker);
        StopPoll::Waiting
    }

    /// Whether the task was told to stop: marked by [`Slot::stop`], or its token cancelled (a
    /// context task's body can cancel its own token). Only a context task can have a token, so
    /// only for one is the mutex taken (this is asked at the end of every task).
    pub(crate) fn stopped(&self) -> bool {
        self.stop_requested()
            || (self.context
                && self
                    .lock()
                    .token
                    .as_ref()
                    .is_some_and(CancellationToken::is_cancelled))
    }

    /// The token of a task from `submit_with_context`, made on its first use: most bodies never
    /// look at theirs, and a token costs an allocation and a lock of its own. A task told to
    /// stop, or over, gets a cancelled one. Every call while the task is live and not told to
    /// stop gives the same token (the one [`Slot::stop`] cancels).
    pub(crate) fn context_token(&self) -> CancellationToken {
        let mut inner = self.lock();
        if let Some(token) = &inner.token {
            return token.clone();
        }
        let token = CancellationToken::new();
        let state = self.state();
        let mut waiters = None;
        if !is_terminal(state) {
            inner.token = Some(token.clone());
            // The waits for the stop wait on the token from now on: the body may cancel it.
            waiters = inner.take_stop_waiters();
        }
        drop(inner);
        // Cancelled, and the waits woken, outside the mutex (rule 2). A `stop` meanwhile cancels
        // it too: it was registered before the mutex was released.
        if is_terminal(state) || state & STOP != 0 {
            token.cancel();
        }
        if let Some(waiters) = waiters {
            waiters.wake();
        }
        token
    }

    /// Aborts a task still live at the shutdown deadline, and remembers it did.
    pub(crate) fn abort_at_deadline(&self) {
        let mut inner = self.lock();
        let state = self.state();
        if is_terminal(state) {
            return;
        }
        self.state.store(state | ABORTED_AT_DEADLINE, Ordering::Release);
        match &inner.join {
            Some(join) => join.abort(),
            None => inner.abort_requested = true,
        }
    }

    /// Whether the shutdown drain's abort at the deadline is what ended the task.
    pub(crate) fn ended_by_deadline_abort(&self) -> bool {
        let state = self.state();
        state & ABORTED_AT_DEADLINE != 0 && state & DROPPED != 0
    }

    /// Keeps the join handle of the freshly spawned task, aborting it if that was asked for
    /// meanwhile. Returns it instead if the task already ended, for the caller to drop.
    pub(crate) fn attach(&self, join: JoinHandle<()>) -> Option<JoinHandle<()>> {
        let mut inner = self.lock();
        if inner.abort_requested {
            join.abort();
        }
        if self.is_terminal() {
            return Some(join);
        }
        inner.join = Some(join);
        None
    }

    /// Aborts the task: returns its abort handle, or remembers to abort it when its join handle
    /// is attached.
    pub(crate) fn abort(&self) -> Option<AbortHandle> {
        let mut inner = self.lock();
        match &inner.join {
            Some(join) => Some(join.abort_handle()),
            None => {
                inner.abort_requested = true;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::STOP_WAITER;
    use super::*;

    fn keys(slot: &Slot) -> Vec<usize> {
        let inner = slot.lock();
        let more = inner.extra.iter().flat_map(|extra| &extra.waiters);
        inner.waiter.iter().chain(more).map(|(key, _)| *key).collect()
    }

    #[test]
    fn a_task_waiting_for_its_stop_again_leaves_one_waker_which_the_stop_takes_alone() {
        struct Task;
        impl std::task::Wake for Task {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let slot = Slot::new("job".to_owned(), 0, 0, true, false);
        let waker = &Waker::from(std::sync::Arc::new(Task));
        // A `Wait` for the status, registered first, under its (even) address.
        slot.lock().waiter = Some((8, waker.clone()));

        assert_eq!(slot.poll_stopped(waker), StopPoll::Waiting);
        assert_eq!(slot.poll_stopped(waker), StopPoll::Waiting);
        assert_eq!(
            keys(&slot),
            [8, STOP_WAITER],
            "the same task's waker was added twice"
        );

        let stop = slot.stop();
        assert!(stop.waiters.is_some() && stop.token.is_none());
        assert_eq!(keys(&slot), [8], "the stop took the wrong wakers");
        assert_eq!(slot.poll_stopped(waker), StopPoll::Yes);
    }
}
