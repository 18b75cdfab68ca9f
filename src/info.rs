//! Snapshots of one task ([`TaskInfo`]), of the whole worker ([`Health`]), and status changes
//! ([`TaskEvent`]).

use std::time::{Duration, SystemTime};

use crate::progress::Progress;
use crate::schedule::ScheduleInfo;
use crate::status::TaskStatus;

/// A snapshot of one task: its status, when it was submitted, started and finished, and its
/// latest progress. Returned by [`Worker::task_info`](crate::Worker::task_info) and
/// [`Worker::tasks`](crate::Worker::tasks); it holds no lock.
///
/// Wall-clock times are for display. `queued` and `run_time` come from a monotonic clock.
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::{TaskStatus, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::new();
/// worker.submit_with_context("import", |ctx| async move {
///     ctx.set_progress(0.5);
///     tokio::time::sleep(Duration::from_secs(3)).await;
///     Ok(())
/// }).await?;
/// tokio::time::sleep(Duration::from_secs(1)).await;
///
/// let info = worker.task_info("import").unwrap();
/// assert_eq!(info.status, TaskStatus::Running);
/// assert_eq!(info.progress.unwrap().fraction, Some(0.5));
/// assert_eq!(info.run_time, Some(Duration::from_secs(1)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id.
    pub id: String,
    /// The submission's generation: unique within the worker, higher for a later submission of
    /// the same id (the same number the task's [`Transition`](crate::Transition)s carry).
    pub generation: u64,
    /// Its status when the snapshot was taken.
    pub status: TaskStatus,
    /// When it was submitted (wall clock).
    pub submitted_at: SystemTime,
    /// When its body started (wall clock), if it did.
    pub started_at: Option<SystemTime>,
    /// When it reached its terminal status (wall clock), if it did.
    pub finished_at: Option<SystemTime>,
    /// How long it waited before starting (or before it ended without starting, or until now).
    pub queued: Duration,
    /// How long its body ran (until now, if it is still running); `None` if it never started.
    pub run_time: Option<Duration>,
    /// The latest progress it reported, if any. It stops changing once the task is terminal.
    pub progress: Option<Progress>,
}

/// A cheap summary of a [`Worker`](crate::Worker) for health endpoints, from
/// [`Worker::health`](crate::Worker::health). The counts are read from atomic counters without
/// walking the registry; while tasks change status they may be off by those in transition.
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let worker = background_worker::Worker::builder().max_concurrent(8).build();
/// let health = worker.health();
/// assert!(health.accepting);
/// assert_eq!(health.max_concurrent, Some(8));
/// assert_eq!(health.total, 0);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Health {
    /// Tasks waiting to start.
    pub pending: usize,
    /// Tasks whose body is running.
    pub running: usize,
    /// Tracked tasks that completed.
    pub completed: usize,
    /// Tracked tasks that failed or panicked.
    pub failed: usize,
    /// Tracked tasks that were cancelled.
    pub cancelled: usize,
    /// All tracked entries.
    pub total: usize,
    /// Whether a submission of a new id would be accepted now: `false` once shutdown has begun,
    /// and while every one of the [`max_tracked`](Health::max_tracked) tracked tasks is live
    /// (none finished, so none can make room). [`not_accepting`](Health::not_accepting) says
    /// why.
    pub accepting: bool,
    /// Why submissions are refused, when [`accepting`](Health::accepting) is `false`.
    pub not_accepting: Option<NotAccepting>,
    /// The tracking cap, if one is set ([`WorkerBuilder::max_tracked`](crate::WorkerBuilder::max_tracked)).
    pub max_tracked: Option<usize>,
    /// The concurrency limit, if one is set.
    pub max_concurrent: Option<usize>,
    /// Pending tasks that wait for a concurrency permit.
    pub waiting_for_permit: usize,
    /// Every schedule, sorted by name (see [`Worker::schedules`](crate::Worker::schedules)).
    /// Feature `serde`: left out of the output when there is none, and read as none when
    /// missing in the input, so a worker without schedules serializes as before.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub schedules: Vec<ScheduleInfo>,
}

/// Why a [`Worker`](crate::Worker) refuses submissions, in [`Health::not_accepting`].
///
/// Feature `serde`: serialized as `"shutting_down"` or `"at_capacity"`.
///
/// # Examples
///
/// ```
/// use background_worker::{NotAccepting, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let worker = Worker::builder().max_tracked(1).build();
/// worker.submit_with_context("a", |ctx| async move { ctx.cancelled().await; Ok(()) }).await.unwrap();
/// let health = worker.health();
/// assert!(!health.accepting);
/// assert_eq!(health.not_accepting, Some(NotAccepting::AtCapacity));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum NotAccepting {
    /// [`Worker::shutdown`](crate::Worker::shutdown) has begun.
    ShuttingDown,
    /// Every tracked task is pending or running, at the tracking cap: none can make room.
    AtCapacity,
}

/// A status change of one task, from [`Worker::subscribe`](crate::Worker::subscribe).
///
/// Every task produces `Pending`, then usually `Running`, then one terminal status, in that order.
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TaskEvent {
    /// The task's id.
    pub id: String,
    /// Its new status.
    pub status: TaskStatus,
    /// When the change happened (wall clock).
    pub at: SystemTime,
}
