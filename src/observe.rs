//! The lossless transition hook: [`Observer`]s see every status change of every task, in order
//! per task.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::report::ShutdownReport;
use crate::status::TaskStatus;

/// One status change of one task, handed to every [`Observer`].
///
/// Every task produces a `Pending` transition when it is submitted, a `Running` one when its body
/// starts (none if it is cancelled first), then exactly one terminal transition (`Completed`,
/// `Failed` or `Cancelled`). Observers see them in that order, each exactly once.
///
/// It borrows from the worker for the length of the call: copy out what you keep.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Transition<'a> {
    /// The task's id.
    pub id: &'a str,
    /// Unique per submission within one worker, and higher for a later submission: when an id is
    /// re-submitted, the new task's transitions carry a higher generation than the old task's.
    pub generation: u64,
    /// The new status.
    pub status: &'a TaskStatus,
    /// When the change happened (wall clock).
    pub at: SystemTime,
    /// When the task was submitted (wall clock).
    pub submitted_at: SystemTime,
    /// How long the task waited before it started: from submission to its start, or to its end if
    /// it ended without starting. `None` on the `Pending` transition.
    pub queued: Option<Duration>,
    /// How long the body ran, on a terminal transition of a task that started. `None` otherwise.
    pub run_time: Option<Duration>,
}

/// Sees every status change of every task of a [`Worker`](crate::Worker), and its shutdown
/// report. Registered on the builder with [`WorkerBuilder::observer`](crate::WorkerBuilder::observer)
/// (or [`on_transition`](crate::WorkerBuilder::on_transition) for a closure).
///
/// Unlike [`Worker::subscribe`](crate::Worker::subscribe), which may lag and skip events, an
/// observer never misses one:
///
/// - It is called synchronously on the thread that made the change (the submitting thread for
///   `Pending`, the task's own thread for the rest, the cancelling thread when
///   [`cancel`](crate::Worker::cancel) has to abort a task), once per transition.
/// - Per task, calls come in the order of the task's transitions, and never overlap.
///   Across tasks, there is no order: different tasks' calls may run at the same time on
///   different threads.
/// - It is never called while the worker holds a lock, so it may call back into the worker (look
///   up a status, cancel a task, even submit).
/// - A panic in an observer is caught and logged at WARN; the worker and the task go on, and the
///   other observers are still called.
/// - Before a task's `wait` or `cancel` returns its terminal status, and before
///   [`shutdown`](crate::Worker::shutdown) returns, observers have been called for it (with one
///   exception: if `cancel` aborts a task while an observer is still running for that task's
///   previous transition, the terminal call follows as soon as that one returns).
///
/// Keep it short and non-blocking: it runs on the worker's hot path, on the runtime's threads.
/// Hand work that may block or wait (I/O, a database) to a channel and do it elsewhere.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use background_worker::{TaskStatus, Transition, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let worker = Worker::builder()
///     .on_transition(move |t: &Transition<'_>| {
///         log.lock().unwrap().push(format!("{} {}", t.id, t.status));
///     })
///     .build();
///
/// worker.submit("job", || async { Ok(()) }).await.unwrap();
/// assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
/// assert_eq!(*seen.lock().unwrap(), ["job pending", "job running", "job completed"]);
/// # }
/// ```
pub trait Observer: Send + Sync + 'static {
    /// Called once for every status change of every task.
    fn on_transition(&self, transition: &Transition<'_>);

    /// Called once, when [`Worker::shutdown`](crate::Worker::shutdown) has drained every task,
    /// with the report that `shutdown` returns. Every task's terminal transition has been seen by
    /// then. The default does nothing.
    fn on_shutdown(&self, report: &ShutdownReport) {
        let _ = report;
    }
}

/// An [`Observer`] made of a closure, for [`WorkerBuilder::on_transition`](crate::WorkerBuilder::on_transition).
pub(crate) struct FnObserver<F>(pub(crate) F);

impl<F> Observer for FnObserver<F>
where
    F: Fn(&Transition<'_>) + Send + Sync + 'static,
{
    fn on_transition(&self, transition: &Transition<'_>) {
        (self.0)(transition);
    }
}

/// The observers of one worker, fixed when it is built.
#[derive(Clone, Default)]
pub(crate) struct Observers(Arc<[Arc<dyn Observer>]>);

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers").field("len", &self.0.len()).finish()
    }
}

impl Observers {
    /// Adds an observer (at build time: the list is fixed once the worker is built).
    pub(crate) fn push(&mut self, observer: Arc<dyn Observer>) {
        let mut all = self.0.to_vec();
        all.push(observer);
        self.0 = all.into();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Calls every observer with `transition`, catching and logging their panics.
    pub(crate) fn transition(&self, transition: &Transition<'_>) {
        for observer in self.0.iter() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| observer.on_transition(transition))) {
                let message = crate::panic::panic_message(payload.as_ref());
                tracing::warn!(task_id = %transition.id, panic = %message, "a transition observer panicked");
            }
        }
    }

    /// Calls every observer with the shutdown report, catching and logging their panics.
    pub(crate) fn shutdown(&self, report: &ShutdownReport) {
        for observer in self.0.iter() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| observer.on_shutdown(report))) {
                let message = crate::panic::panic_message(payload.as_ref());
                tracing::warn!(panic = %message, "a shutdown observer panicked");
            }
        }
    }
}
