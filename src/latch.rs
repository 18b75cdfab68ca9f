//! A set-once value that any number of tasks can wait for.

use std::sync::OnceLock;

use tokio::sync::Notify;

/// Set once, read by everyone: a task's terminal status (for `wait` and `cancel`) and the
/// shutdown report (for every `shutdown` caller).
#[derive(Debug)]
pub(crate) struct Latch<T> {
    notify: Notify,
    value: OnceLock<T>,
}

impl<T> Default for Latch<T> {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            value: OnceLock::new(),
        }
    }
}

impl<T: Clone> Latch<T> {
    /// Sets the value (the first call wins) and wakes every waiter.
    pub(crate) fn set(&self, value: T) {
        let _ = self.value.set(value);
        self.notify.notify_waiters();
    }

    /// Completes with the value once it is set.
    ///
    /// Cancel safe: dropping the future loses nothing.
    pub(crate) async fn wait(&self) -> T {
        loop {
            // A `Notified` is woken by every `notify_waiters` call made after its creation, even
            // before it is first polled, so creating it before the check loses no wake-up.
            let notified = self.notify.notified();
            if let Some(value) = self.value.get() {
                return value.clone();
            }
            notified.await;
        }
    }
}
