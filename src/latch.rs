//! A set-once value that any number of tasks can wait for.

use std::sync::PoisonError;

use crate::sync::tokio::sync::Notify;
use crate::sync::Mutex;

/// Set once, read by everyone: a task's terminal status (for `wait` and `cancel`) and the
/// shutdown report (for every `shutdown` caller).
#[derive(Debug)]
pub(crate) struct Latch<T> {
    notify: Notify,
    value: Mutex<Option<T>>,
}

impl<T> Default for Latch<T> {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            value: Mutex::new(None),
        }
    }
}

impl<T: Clone> Latch<T> {
    /// Sets the value (the first call wins) and wakes every waiter.
    pub(crate) fn set(&self, value: T) {
        self.value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(value);
        self.notify.notify_waiters();
    }

    fn get(&self) -> Option<T> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Completes with the value once it is set.
    ///
    /// Cancel safe: dropping the future loses nothing.
    pub(crate) async fn wait(&self) -> T {
        loop {
            // A `Notified` is woken by every `notify_waiters` call made after its creation, even
            // before it is first polled, so creating it before the check loses no wake-up.
            let notified = self.notify.notified();
            if let Some(value) = self.get() {
                return value;
            }
            notified.await;
        }
    }
}
