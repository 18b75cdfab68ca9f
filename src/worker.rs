//! [`Worker`]: the public handle, and what changes its tasks (submit, cancel, wait, shutdown).
//! Making one is in `builder.rs`, the read-only queries in `inspect.rs`.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};

use crate::sync::tokio;
use crate::sync::tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::TaskContext;
use crate::error::{CancelError, SubmitError};
use crate::report::ShutdownReport;
use crate::schedule::Schedules;
use crate::shared::Shared;
use crate::shutdown;
use crate::slot::Slot;
use crate::status::TaskStatus;
use crate::submit;

/// The state behind every clone of one [`Worker`].
struct Inner {
    shared: Arc<Shared>,
    /// Stops the reaper (tasks have tokens of their own, see `shutdown::stop_all`).
    stop_reaper: CancellationToken,
    /// The worker's schedules (`src/schedule/`); dropped with the last handle, which stops them.
    schedules: Schedules,
}

impl Drop for Inner {
    /// The last `Worker` handle is gone: tell every task to stop (cancel the tokens of tasks from
    /// `submit_with_context`, abort those from `submit`).
    fn drop(&mut self) {
        drop(shutdown::stop_all(&self.shared));
        self.stop_reaper.cancel();
    }
}

/// A cloneable handle that runs named background tasks and tracks their status.
///
/// Every task gets an id and an entry in a shared registry (a `DashMap` of per-task slots) that
/// holds its [`TaskStatus`]: `Pending` from the moment `submit` returns, `Running` once the body
/// starts, then exactly one of `Completed`, `Failed(message)` or `Cancelled`. Status queries read
/// the registry directly: no message passing, no waiting. A task from
/// [`submit_with_context`](Worker::submit_with_context) also gets its own
/// [`CancellationToken`] to watch; one from [`submit`](Worker::submit), whose body cannot see a
/// token, is stopped by an abort instead, which drops it at its next `.await` just the same and
/// costs no token.
///
/// `Worker` is `Clone + Send + Sync`; it is a thin wrapper around one `Arc`, and all clones share
/// the same registry, tokens and settings. Put one clone in your web framework's state and keep
/// one in `main` for [`shutdown`](Worker::shutdown).
///
/// # Compared with tokio's own tools
///
/// [`tokio::spawn`] hands back a `JoinHandle` that only its owner can await, and forgets panics
/// unless someone awaits it. [`tokio::task::JoinSet`] and tokio-util's `TaskTracker` wait for a
/// group of tasks, but know nothing about individual tasks by name. `Worker` adds the name: ask
/// for a task's status from anywhere, wait for it, cancel it, and get a report of how each one
/// ended at shutdown.
///
/// # Dropping
///
/// Dropping the last handle without calling [`shutdown`](Worker::shutdown) tells every task to
/// stop: tasks from [`submit`](Worker::submit) are dropped at their next `.await`, tasks from
/// [`submit_with_context`](Worker::submit_with_context) get their token cancelled. Nobody waits for
/// them or aborts them after that; call `shutdown` for a bounded, reported stop. Every
/// [schedule](Worker::schedule) stops too.
///
/// # Examples
///
/// ```
/// use background_worker::{TaskStatus, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::new();
///
/// worker.submit("report-42", || async {
///     // generate the report...
///     Ok(())
/// }).await?;
/// worker.submit("sync", || async { anyhow::bail!("upstream returned 503") }).await?;
///
/// assert_eq!(worker.wait("report-42").await, Some(TaskStatus::Completed));
/// assert_eq!(
///     worker.wait("sync").await,
///     Some(TaskStatus::Failed("upstream returned 503".into()))
/// );
///
/// let report = worker.shutdown().await;
/// assert_eq!(report.total(), 0); // nothing was still running
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.inner.shared;
        f.debug_struct("Worker")
            .field("name", &shared.config.name)
            .field("tasks", &shared.registry.len())
            .field("running", &shared.count(&TaskStatus::Running))
            .field("is_shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl Worker {
    pub(crate) fn from_config(config: Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(config)),
                stop_reaper: CancellationToken::new(),
                schedules: Schedules::default(),
            }),
        }
    }

    /// What the handle shares with its tasks.
    #[inline]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Runs `work` as a task named `id`.
    ///
    /// The task is registered as [`TaskStatus::Pending`] before this returns, so it is never
    /// invisible to [`get_task_status`](Worker::get_task_status). The closure is called once the
    /// task starts (after a permit, with [`max_concurrent`](crate::WorkerBuilder::max_concurrent)), on
    /// the runtime this is called from.
    ///
    /// When the task is cancelled ([`cancel`](Worker::cancel), [`shutdown`](Worker::shutdown)),
    /// the body is dropped at its next `.await`. Use
    /// [`submit_with_context`](Worker::submit_with_context) for a body that should wind down on
    /// its own instead.
    ///
    /// An `Err` from the body becomes [`TaskStatus::Failed`] with the error and its causes
    /// (`format!("{e:#}")`); a panic in the closure or the body becomes
    /// `Failed("panicked: <message>")` and is logged at WARN. Neither affects other tasks.
    ///
    /// An id may be reused once its previous task is terminal; the new task replaces the old entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::{SubmitError, TaskStatus, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::new();
    /// worker.submit("job", || std::future::pending()).await.unwrap();
    ///
    /// let again = worker.submit("job", || async { Ok(()) }).await;
    /// assert_eq!(again, Err(SubmitError::DuplicateId { id: "job".into() }));
    /// assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The closure is dropped without being called and nothing is registered when:
    /// - the id is empty: [`SubmitError::InvalidId`];
    /// - a task with this id is pending or running: [`SubmitError::DuplicateId`] (that task is
    ///   left untouched);
    /// - [`shutdown`](Worker::shutdown) has begun: [`SubmitError::ShuttingDown`].
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime (as [`tokio::spawn`] does).
    ///
    /// # Cancel safety
    ///
    /// The returned future completes at its first poll, without waiting for anything; dropping it
    /// before that submits nothing.
    pub async fn submit<F, Fut>(&self, id: impl Into<String>, work: F) -> Result<(), SubmitError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        submit::spawn(
            &self.inner.shared,
            &self.inner.stop_reaper,
            id.into(),
            self.inner.shared.next_generation(),
            false,
            move |_: &Arc<Slot>| work(),
        )
    }

    /// Runs `work` as a task named `id`, handing it a [`TaskContext`] with its id and
    /// cancellation token.
    ///
    /// Everything said for [`submit`](Worker::submit) holds, except for cancellation: the body is
    /// not dropped when it is cancelled but told through its token, and gets up to the cancel (or
    /// shutdown) timeout to wind down on its own. Whatever it returns after being told, its status
    /// is [`TaskStatus::Cancelled`]. A body still running at the timeout is aborted and marked
    /// `Cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::{TaskStatus, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let worker = Worker::new();
    /// worker.submit_with_context("export", |ctx| async move {
    ///     ctx.cancelled().await;
    ///     // flush what was exported so far, then return
    ///     Ok(())
    /// }).await?;
    ///
    /// assert_eq!(worker.cancel("export").await?, TaskStatus::Cancelled);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`submit`](Worker::submit).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime (as [`tokio::spawn`] does).
    ///
    /// # Cancel safety
    ///
    /// As for [`submit`](Worker::submit).
    pub async fn submit_with_context<F, Fut>(&self, id: impl Into<String>, work: F) -> Result<(), SubmitError>
    where
        F: FnOnce(TaskContext) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        // The context makes the task's token when the body first asks for it (see
        // `Slot::context_token`).
        submit::spawn(
            &self.inner.shared,
            &self.inner.stop_reaper,
            id.into(),
            self.inner.shared.next_generation(),
            true,
            move |slot: &Arc<Slot>| work(TaskContext::new(Arc::clone(slot))),
        )
    }

    /// A fresh generation for a submission that names itself elsewhere before it is made (a
    /// claimed submission of the Redis mirror), then made with
    /// [`submit_as`](Worker::submit_as).
    #[cfg(feature = "redis")]
    pub(crate) fn next_generation(&self) -> u64 {
        self.inner.shared.next_generation()
    }

    /// [`submit`](Worker::submit) (`with_context` false: the body gets `None`) or
    /// [`submit_with_context`](Worker::submit_with_context) (it gets the context) under a
    /// generation taken with [`next_generation`](Worker::next_generation).
    #[cfg(feature = "redis")]
    #[track_caller]
    pub(crate) fn submit_as<F, Fut>(
        &self,
        id: String,
        generation: u64,
        with_context: bool,
        work: F,
    ) -> Result<(), SubmitError>
    where
        F: FnOnce(Option<TaskContext>) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        submit::spawn(
            &self.inner.shared,
            &self.inner.stop_reaper,
            id,
            generation,
            with_context,
            move |slot: &Arc<Slot>| work(with_context.then(|| TaskContext::new(Arc::clone(slot)))),
        )
    }

    /// Cancels the task named `id` and returns its final status.
    ///
    /// Tells the task to stop, waits up to the [cancel timeout](crate::WorkerBuilder::cancel_timeout)
    /// for it to stop, and aborts it if it did not. A pending task never starts. A task from
    /// [`submit`](Worker::submit) is dropped at its next `.await` (it is aborted at once: its body
    /// has no token to watch); one from [`submit_with_context`](Worker::submit_with_context) has
    /// its token cancelled and gets the timeout to wind down.
    ///
    /// Cancelling a task that already finished changes nothing and returns its status, so
    /// cancelling twice is fine. Cancelling races with the task finishing on its own: the returned
    /// status is whichever came first, and is the status the registry holds from then on.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::{CancelError, TaskStatus, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::new();
    /// worker.submit("poll", || std::future::pending()).await.unwrap();
    ///
    /// assert_eq!(worker.cancel("poll").await, Ok(TaskStatus::Cancelled));
    /// assert_eq!(worker.cancel("poll").await, Ok(TaskStatus::Cancelled));
    /// assert_eq!(worker.cancel("other").await, Err(CancelError::NotFound { id: "other".into() }));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`CancelError::NotFound`] if no task with this id is tracked.
    ///
    /// # Cancel safety
    ///
    /// The task is signalled at the first poll. Dropping the future after that does not take the
    /// signal back, but the task is then not aborted at the timeout by this call (a later
    /// `cancel` or `shutdown` still can).
    pub async fn cancel(&self, id: &str) -> Result<TaskStatus, CancelError> {
        let shared = &self.inner.shared;
        let Some(slot) = shared.registry.slot(id) else {
            return Err(CancelError::NotFound { id: id.to_owned() });
        };
        if let Some(status) = slot.settled() {
            return Ok(status); // nothing to cancel
        }
        slot.stop().signal();
        let timeout = shared.config.cancel_timeout;
        if let Ok(status) = tokio::time::timeout(timeout, slot.wait(false)).await {
            return Ok(status);
        }
        tracing::warn!(task_id = %id, ?timeout, "task did not stop within the cancel timeout, aborting it");
        if let Some(handle) = slot.abort() {
            handle.abort();
        }
        // A body blocking its thread cannot be aborted mid-poll: mark the task cancelled now.
        // Its future still counts as live until it is dropped, so `shutdown` waits for it.
        shared.tracker.enter();
        shared.finish(&slot, TaskStatus::Cancelled, false);
        shared.tracker.exit();
        // Settled by now, by us or by the task: this task's own status, even if the id was
        // cleaned up or re-submitted meanwhile.
        Ok(slot.wait(false).await)
    }

    /// Waits until the task named `id` is terminal and returns that status; `None` if no such
    /// task is tracked. Returns at once for a task that already finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::{TaskStatus, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::new();
    /// worker.submit("boom", || async { panic!("bad input") }).await.unwrap();
    /// assert_eq!(worker.wait("boom").await, Some(TaskStatus::Failed("panicked: bad input".into())));
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future has no effect on the task.
    pub async fn wait(&self, id: &str) -> Option<TaskStatus> {
        let slot = match self.inner.shared.registry.settled_or_slot(id)? {
            Ok(status) => return Some(status),
            Err(slot) => slot,
        };
        Some(slot.wait(true).await)
    }

    /// Stops the worker: refuses new work, cancels every task, waits for them and reports how
    /// each one ended.
    ///
    /// 1. From the first call on, every submit fails with [`SubmitError::ShuttingDown`]. A submit
    ///    racing this call is either refused or fully registered and then drained. Every
    ///    [schedule](Worker::schedule) stops and is dropped: no tick is submitted any more.
    /// 2. Every task is told to stop (as [`cancel`](Worker::cancel) does), all at once. Pending
    ///    tasks never start.
    /// 3. Every task that was pending or running gets the
    ///    [shutdown timeout](crate::WorkerBuilder::shutdown_timeout) to stop, all at the same time: a
    ///    thousand tasks that ignore cancellation take about one timeout in total. Tasks still
    ///    running then are aborted (and marked [`TaskStatus::Cancelled`]).
    ///
    /// When this returns, every task the worker accepted is terminal and no task body runs any
    /// more. (A body that blocks its thread cannot be aborted mid-poll; the shutdown then waits for
    /// that poll to return.)
    ///
    /// Calling `shutdown` again, from any clone and at any time, waits for the same drain and
    /// returns the same report.
    ///
    /// Logs at INFO when it starts and ends, DEBUG per task, WARN per task that timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::{TaskOutcome, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::builder().shutdown_timeout(Duration::from_secs(1)).build();
    /// worker.submit_with_context("stubborn", |_ctx| async {
    ///     tokio::time::sleep(Duration::from_secs(60)).await; // ignores its token
    ///     Ok(())
    /// }).await.unwrap();
    /// tokio::task::yield_now().await; // let it start: a task still pending would never run
    ///
    /// let report = worker.shutdown().await;
    /// assert_eq!(report.outcome("stubborn"), Some(&TaskOutcome::Aborted));
    /// assert_eq!(worker.shutdown().await, report); // same report for every caller
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime (it spawns the drain).
    ///
    /// # Cancel safety
    ///
    /// The shutdown starts at the first poll and the drain runs in its own task: dropping this
    /// future does not stop it. Call `shutdown` again to wait for the report.
    pub async fn shutdown(&self) -> ShutdownReport {
        let inner = &self.inner;
        let shared = &inner.shared;
        inner.schedules.stop();
        if let Some(live) = shutdown::begin(shared) {
            inner.stop_reaper.cancel();
            tokio::spawn(shutdown::drain(
                Arc::clone(shared),
                live,
                shared.config.shutdown_timeout,
            ));
        }
        shared.report.wait().await
    }
}

/// Hooks for the schedules (`src/schedule/`), which keep their `impl Worker` there.
impl Worker {
    pub(crate) fn schedule_state(&self) -> &Schedules {
        &self.inner.schedules
    }

    /// A handle that does not keep the worker alive (the schedule driver's).
    pub(crate) fn downgrade(&self) -> WeakWorker {
        WeakWorker(Arc::downgrade(&self.inner))
    }
}

/// A [`Worker`] that does not keep it alive; see [`Worker::downgrade`].
#[derive(Debug)]
pub(crate) struct WeakWorker(Weak<Inner>);

impl WeakWorker {
    pub(crate) fn upgrade(&self) -> Option<Worker> {
        self.0.upgrade().map(|inner| Worker { inner })
    }
}
