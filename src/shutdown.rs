//! The shutdown drain (a `JoinSet` with one deadline for all tasks) and its report.

use std::sync::Arc;
use std::time::Duration;

use crate::sync::tokio;
use crate::sync::tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::registry::Draining;
use crate::status::TaskStatus;
use crate::worker::Shared;

/// How one task ended during [`Worker::shutdown`](crate::Worker::shutdown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "outcome", content = "message", rename_all = "snake_case")
)]
pub enum TaskOutcome {
    /// The body finished with `Ok(())` before the shutdown signalled it. Rare: the signal goes
    /// to every task at once when the shutdown begins, and whatever a task returns after that
    /// counts as cancelled; only a task finishing at that very moment is reported here.
    Completed,
    /// The body failed or panicked before the shutdown signalled it (as rare as `Completed`).
    Failed(String),
    /// The task stopped within the shutdown timeout after being signalled, or never started.
    Cancelled,
    /// The task was still running at the shutdown timeout and was aborted. Its status is
    /// [`TaskStatus::Cancelled`].
    Aborted,
}

impl TaskOutcome {
    fn from_status(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Completed => Self::Completed,
            TaskStatus::Failed(message) => Self::Failed(message),
            TaskStatus::Pending | TaskStatus::Running | TaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// One task's line in a [`ShutdownReport`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TaskReport {
    /// The task's id.
    pub id: String,
    /// How it ended.
    pub outcome: TaskOutcome,
}

/// What [`Worker::shutdown`](crate::Worker::shutdown) found: one line for every task that was
/// pending or running when the shutdown began (tasks that had finished earlier are not listed),
/// sorted by id, and how long the drain took.
///
/// # Examples
///
/// ```
/// use background_worker::{TaskOutcome, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::new();
/// worker.submit("forever", || std::future::pending()).await?;
///
/// let report = worker.shutdown().await;
/// assert_eq!(report.total(), 1);
/// assert_eq!(report.cancelled(), 1);
/// assert_eq!(report.outcome("forever"), Some(&TaskOutcome::Cancelled));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShutdownReport {
    /// Shared, so every `shutdown` caller gets the report without a deep copy.
    tasks: Arc<[TaskReport]>,
    elapsed: Duration,
}

impl ShutdownReport {
    /// Every task that was pending or running when the shutdown began, sorted by id.
    #[must_use]
    pub fn tasks(&self) -> &[TaskReport] {
        &self.tasks
    }

    /// How the task with this id ended, if it was drained.
    #[must_use]
    pub fn outcome(&self, id: &str) -> Option<&TaskOutcome> {
        self.tasks
            .binary_search_by(|task| task.id.as_str().cmp(id))
            .ok()
            .map(|index| &self.tasks[index].outcome)
    }

    /// How long the drain took, from the signal to the last task stopping.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Number of tasks drained.
    #[must_use]
    pub fn total(&self) -> usize {
        self.tasks.len()
    }

    /// Number of tasks that completed.
    #[must_use]
    pub fn completed(&self) -> usize {
        self.count(|outcome| matches!(outcome, TaskOutcome::Completed))
    }

    /// Number of tasks that failed.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.count(|outcome| matches!(outcome, TaskOutcome::Failed(_)))
    }

    /// Number of tasks that stopped on being signalled (or never started).
    #[must_use]
    pub fn cancelled(&self) -> usize {
        self.count(|outcome| matches!(outcome, TaskOutcome::Cancelled))
    }

    /// Number of tasks that had to be aborted at the timeout.
    #[must_use]
    pub fn aborted(&self) -> usize {
        self.count(|outcome| matches!(outcome, TaskOutcome::Aborted))
    }

    fn count(&self, matches: impl Fn(&TaskOutcome) -> bool) -> usize {
        self.tasks.iter().filter(|task| matches(&task.outcome)).count()
    }
}

/// How many drained tasks one `JoinSet` task waits for. Every task gets the same deadline, so
/// waiting for a few dozen of them in turn takes no longer than waiting for each on its own, and
/// it saves a spawned task and a timer per drained task.
const CHUNK: usize = 64;

/// Waits for every drained task, all against one deadline, aborting those still running at it;
/// then waits for tasks that `cancel` had aborted; then publishes the report.
pub(crate) async fn drain(
    shared: Arc<Shared>,
    draining: Vec<Draining>,
    aborted: Vec<JoinHandle<TaskStatus>>,
    timeout: Duration,
) {
    let started = Instant::now();
    let deadline = started + timeout;
    tracing::info!(tasks = draining.len(), ?timeout, "worker shutting down");

    let total = draining.len();
    let mut set = JoinSet::new();
    let mut draining = draining.into_iter();
    loop {
        let chunk: Vec<Draining> = draining.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        set.spawn(drain_chunk(chunk, deadline, timeout));
    }

    let mut tasks = Vec::with_capacity(total);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(reports) => tasks.extend(reports),
            Err(error) => tracing::error!(%error, "shutdown drain lost a task"),
        }
    }
    for join in aborted {
        let _ = join.await;
    }
    tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));

    let report = ShutdownReport {
        tasks: tasks.into(),
        elapsed: started.elapsed(),
    };
    tracing::info!(
        completed = report.completed(),
        failed = report.failed(),
        cancelled = report.cancelled(),
        aborted = report.aborted(),
        elapsed = ?report.elapsed,
        "worker stopped"
    );
    shared.report.set(report);
}

/// Waits for each task of `chunk` until `deadline`; at the deadline, aborts all that are left.
async fn drain_chunk(mut chunk: Vec<Draining>, deadline: Instant, timeout: Duration) -> Vec<TaskReport> {
    let mut joined: Vec<Option<Result<TaskStatus, JoinError>>> = chunk.iter().map(|_| None).collect();
    // One timer for the whole chunk: the tasks share the deadline.
    let in_time = tokio::time::timeout_at(deadline, async {
        for (slot, task) in joined.iter_mut().zip(chunk.iter_mut()) {
            *slot = Some((&mut task.join).await);
        }
    })
    .await
    .is_ok();
    if !in_time {
        for (slot, late) in joined.iter().zip(&chunk) {
            if slot.is_none() && !late.join.is_finished() {
                tracing::warn!(task_id = %late.id, ?timeout, "task did not stop within the shutdown timeout, aborting it");
                late.join.abort();
            }
        }
    }

    let mut reports = Vec::with_capacity(chunk.len());
    for (slot, task) in joined.into_iter().zip(chunk) {
        let late = slot.is_none();
        let result = match slot {
            Some(result) => result,
            // Ready as soon as the task is dropped (at once unless it blocks its thread).
            None => task.join.await,
        };
        let outcome = match result {
            Ok(status) => TaskOutcome::from_status(status),
            Err(error) if error.is_cancelled() && late => TaskOutcome::Aborted,
            Err(_) => TaskOutcome::Cancelled,
        };
        tracing::debug!(task_id = %task.id, ?outcome, "task stopped");
        reports.push(TaskReport {
            id: task.id.to_string(),
            outcome,
        });
    }
    reports
}
