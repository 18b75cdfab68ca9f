//! Making a [`Worker`]: [`Worker::new`], [`Worker::builder`] and the [`WorkerBuilder`].

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::observe::{FnObserver, Observer, Transition};
use crate::worker::Worker;

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

impl Worker {
    /// A worker with the defaults: no concurrency limit, 5 second cancel and shutdown timeouts.
    ///
    /// It needs no runtime until the first task is submitted.
    ///
    /// ```
    /// let worker = background_worker::Worker::new();
    /// assert!(!worker.is_shutting_down());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        WorkerBuilder::default().build()
    }

    /// A builder to set the concurrency limit and the timeouts. See [`WorkerBuilder`].
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }
}

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
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkerBuilder {
    pub(crate) config: Config,
    /// Set by [`metrics(false)`](Self::metrics) (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(crate) without_metrics: bool,
}

impl WorkerBuilder {
    /// At most `limit` task bodies run at the same time; the others wait as
    /// [`Pending`](crate::TaskStatus::Pending) for a permit. Permits go out first come, first
    /// served, in the order the runtime first polls the waiting tasks: roughly, not strictly, the
    /// order of submission on a multi-thread runtime.
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

    /// Removes each finished (completed, failed or cancelled) entry `ttl` after it finished, so
    /// statuses stay queryable for a while and then go away without anyone calling
    /// [`Worker::cleanup_finished_tasks`]. A timer task, spawned with the first submission, does
    /// the removal; it stops when shutdown begins or the last handle is dropped.
    ///
    /// Default: finished entries are kept until cleaned up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::Worker;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::builder().retain_finished_for(Duration::from_secs(60)).build();
    /// worker.submit("job", || async { Ok(()) }).await.unwrap();
    /// worker.wait("job").await;
    /// assert!(worker.has_task("job"));
    ///
    /// tokio::time::sleep(Duration::from_secs(61)).await;
    /// assert!(!worker.has_task("job"));
    /// # }
    /// ```
    pub fn retain_finished_for(mut self, ttl: Duration) -> Self {
        self.config.retention.ttl = Some(ttl);
        self
    }

    /// Keeps at most `max` finished entries: when another task finishes, the oldest finished
    /// entries are removed. Pending and running tasks are never removed.
    ///
    /// Default: no maximum.
    pub fn max_finished(mut self, max: usize) -> Self {
        self.config.retention.max_finished = Some(max);
        self
    }

    /// Tracks at most `max` entries of any status. A submission beyond it first removes what
    /// the retention options allow, then fails with
    /// [`SubmitError::AtCapacity`](crate::SubmitError::AtCapacity) and drops its closure unrun.
    /// This bounds the registry's memory under a flood of submissions.
    ///
    /// Default: no maximum.
    pub fn max_tracked(mut self, max: usize) -> Self {
        self.config.max_tracked = Some(max);
        self
    }

    /// Names the worker, for its metrics and logs: the `worker` label of every metric it emits
    /// (feature `metrics`). Default: `"default"`. Give each worker of a process its own name.
    ///
    /// ```
    /// let worker = background_worker::Worker::builder().name("reports").build();
    /// assert_eq!(worker.name(), "reports");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Arc::from(name.into());
        self
    }

    /// Adds an [`Observer`]: it sees every status change of every task, in order per task, and
    /// the shutdown report. Observers are called in the order they were added. See [`Observer`]
    /// for what it may and may not do.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.config.observers.push(Arc::new(observer));
        self
    }

    /// Adds a closure as an [`Observer`] of every status change (see [`observer`](Self::observer)).
    ///
    /// ```
    /// use background_worker::{Transition, Worker};
    ///
    /// let worker = Worker::builder()
    ///     .on_transition(|t: &Transition<'_>| tracing::info!(task_id = t.id, status = %t.status))
    ///     .build();
    /// # drop(worker);
    /// ```
    pub fn on_transition<F>(self, observer: F) -> Self
    where
        F: Fn(&Transition<'_>) + Send + Sync + 'static,
    {
        self.observer(FnObserver(observer))
    }

    /// Whether the worker emits the metrics of the [`metrics`](crate::metrics) module (feature
    /// `metrics`). Default: `true`. With `false`, no metrics observer is added, so the worker
    /// costs what it costs without the feature (other crates of a build may turn the feature on).
    ///
    /// ```
    /// let quiet = background_worker::Worker::builder().metrics(false).build();
    /// # drop(quiet);
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.without_metrics = !enabled;
        self
    }

    /// Builds the worker. It needs no runtime until the first task is submitted.
    ///
    /// With the feature `metrics`, this also adds the observer that emits the worker's
    /// [metrics](crate::metrics), with handles from the recorder installed now (unless
    /// [`metrics(false)`](Self::metrics)).
    #[must_use]
    #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
    pub fn build(mut self) -> Worker {
        #[cfg(feature = "metrics")]
        if !self.without_metrics {
            crate::metrics::install(&mut self.config);
        }
        Worker::from_config(self.config)
    }
}
