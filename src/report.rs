//! What [`Worker::shutdown`](crate::Worker::shutdown) returns: how each drained task ended.

use std::sync::Arc;
use std::time::Duration;

use crate::status::TaskStatus;

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
    pub(crate) fn from_status(status: TaskStatus) -> Self {
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
    pub(crate) tasks: Arc<[TaskReport]>,
    pub(crate) elapsed: Duration,
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
