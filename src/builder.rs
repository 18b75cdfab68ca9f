//! Configuring a [`Worker`].

use std::time::Duration;

use crate::worker::{Config, Worker};

/// The default for both [`WorkerBuilder::cancel_timeout`] and [`WorkerBuilder::shutdown_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures and builds a [`Worker`]. Made by [`Worker::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::Worker;
///
/// let worker = Worker::builder()
///     .max_concurrent(4)
///     .cancel_timeout(Duration::from_secs(2))
///     .shutdown_timeout(Duration::from_secs(10))
///     .build();
/// assert_eq!(worker.task_count(), 0);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkerBuilder {
    pub(crate) config: Config,
}

impl Default for WorkerBuilder {
    fn default() -> Self {
        Self {
            config: Config {
                max_concurrent: None,
                cancel_timeout: DEFAULT_TIMEOUT,
                shutdown_timeout: DEFAULT_TIMEOUT,
            },
        }
    }
}

impl WorkerBuilder {
    /// At most `limit` task bodies run at the same time; the others wait as
    /// [`Pending`](crate::TaskStatus::Pending) for a permit, in submission order.
    ///
    /// The default is no limit. A limit of `0` would never run anything, so it is raised to `1`;
    /// a limit above [`tokio::sync::Semaphore::MAX_PERMITS`] is lowered to it.
    pub fn max_concurrent(mut self, limit: usize) -> Self {
        self.config.max_concurrent = Some(limit.clamp(1, tokio::sync::Semaphore::MAX_PERMITS));
        self
    }

    /// How long [`Worker::cancel`] waits for a task to stop after signalling its token, before it
    /// aborts the task. Default: 5 seconds.
    pub fn cancel_timeout(mut self, timeout: Duration) -> Self {
        self.config.cancel_timeout = timeout;
        self
    }

    /// How long [`Worker::shutdown`] gives every task (all at once, not one after the other) to
    /// stop after signalling it, before it aborts the task. Default: 5 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Builds the worker. It needs no runtime until the first task is submitted.
    #[must_use]
    pub fn build(self) -> Worker {
        Worker::from_config(self.config)
    }
}
