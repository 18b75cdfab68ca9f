//! The tasks waiting on a slot, kept under its mutex: the waits for its status to settle
//! ([`Wait`](super::wait::Wait), keyed by their address) and a context task's waits for its stop
//! (under [`STOP_WAITER`]). Taken out under the mutex, woken after it is released.

use std::task::Waker;

use super::guarded::Inner;

/// The key of a `TaskContext::cancelled` waiter in a slot's waiter list: odd, where a
/// [`Wait`](super::wait::Wait)'s key is its (aligned, so even) address.
pub(super) const STOP_WAITER: usize = 1;

impl Inner {
    /// Puts `waker` in place of the one registered under `key` unless both wake the same task;
    /// returns the one it replaced, to drop once the mutex is released.
    pub(super) fn replace_waker(&mut self, key: usize, waker: &Waker) -> Option<Waker> {
        let stored = match &mut self.waiter {
            Some((first, stored)) if *first == key => stored,
            _ => {
                let extra = self.extra.as_mut()?;
                &mut extra.waiters.iter_mut().find(|(k, _)| *k == key)?.1
            }
        };
        if stored.will_wake(waker) {
            return None;
        }
        Some(std::mem::replace(stored, waker.clone()))
    }

    /// Takes out the waker registered under `key`, to drop once the mutex is released.
    pub(super) fn remove_waker(&mut self, key: usize) -> Option<Waker> {
        if self.waiter.as_ref().is_some_and(|(first, _)| *first == key) {
            return self.waiter.take().map(|(_, waker)| waker);
        }
        let waiters = &mut self.extra.as_mut()?.waiters;
        let at = waiters.iter().position(|(k, _)| *k == key)?;
        Some(waiters.swap_remove(at).1)
    }

    /// Leaves `waker` to be woken at the stop, unless this task's waker is there already.
    pub(super) fn add_stop_waiter(&mut self, waker: &Waker) {
        let present = |entry: &(usize, Waker)| entry.0 == STOP_WAITER && entry.1.will_wake(waker);
        if self.waiter.as_ref().is_some_and(present)
            || self
                .extra
                .as_ref()
                .is_some_and(|extra| extra.waiters.iter().any(present))
        {
            return;
        }
        let entry = (STOP_WAITER, waker.clone());
        match &self.waiter {
            None => self.waiter = Some(entry),
            Some(_) => self.extra().waiters.push(entry),
        }
    }

    /// Takes the stop waiters out (the others stay), to wake once the mutex is released.
    pub(super) fn take_stop_waiters(&mut self) -> Option<Wakers> {
        let first = match &self.waiter {
            Some((STOP_WAITER, _)) => self.waiter.take().map(|(_, waker)| waker),
            _ => None,
        };
        let mut more = Vec::new();
        if let Some(extra) = self.extra.as_mut() {
            if extra.waiters.iter().any(|(key, _)| *key == STOP_WAITER) {
                let (stop, keep) = std::mem::take(&mut extra.waiters)
                    .into_iter()
                    .partition(|(key, _)| *key == STOP_WAITER);
                extra.waiters = keep;
                more = stop;
            }
        }
        (first.is_some() || !more.is_empty()).then_some(Wakers { first, more })
    }

    /// Takes every waiter out, to wake once the mutex is released; `None` if nobody waits.
    pub(super) fn take_waiters(&mut self) -> Option<Wakers> {
        let first = self.waiter.take().map(|(_, waker)| waker);
        let more = self
            .extra
            .as_mut()
            .map(|extra| std::mem::take(&mut extra.waiters))
            .unwrap_or_default();
        (first.is_some() || !more.is_empty()).then_some(Wakers { first, more })
    }
}

/// The tasks waiting for a slot to settle (or, from [`Slot::stop`](super::Slot::stop), for it to be
/// told to stop), taken out of it: woken by [`Wakers::wake`] once the slot's mutex is released.
#[must_use]
#[derive(Debug)]
pub(crate) struct Wakers {
    first: Option<Waker>,
    more: Vec<(usize, Waker)>,
}

impl Wakers {
    pub(crate) fn wake(self) {
        if let Some(waker) = self.first {
            waker.wake();
        }
        for (_, waker) in self.more {
            waker.wake();
        }
    }
}
