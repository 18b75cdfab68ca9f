//! What [`Worker::shutdown`](crate::Worker::shutdown) returns: how each drained task ended.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::slot::Slot;
use crate::status::TaskStatus;

/// How one task ended during [`Worker::shutdown`](crate::Worker::shutdown).
///
/// Feature `serde`: `Serialize` and `Deserialize`, tagged by `outcome`, with the failure in
/// `message`.
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
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
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
/// Its counts and lines are worked out from the drained tasks the first time they are read, so
/// that `shutdown` returns as soon as the tasks have stopped. Clones share them.
///
/// Feature `serde`: `Serialize` and `Deserialize`, as `{"tasks": [...], "elapsed": ...}`.
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
#[derive(Clone)]
pub struct ShutdownReport {
    /// Shared, so every `shutdown` caller gets the report without a deep copy.
    lines: Arc<Lines>,
    elapsed: Duration,
}

/// How many drained tasks ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    completed: usize,
    failed: usize,
    cancelled: usize,
    aborted: usize,
}

impl Counts {
    fn of<'a>(outcomes: impl Iterator<Item = &'a TaskOutcome>) -> Self {
        let mut counts = Self::default();
        for outcome in outcomes {
            match outcome {
                TaskOutcome::Completed => counts.completed += 1,
                TaskOutcome::Failed(_) => counts.failed += 1,
                TaskOutcome::Cancelled => counts.cancelled += 1,
                TaskOutcome::Aborted => counts.aborted += 1,
            }
        }
        counts
    }

    /// The counts of drained tasks, from their slots' state (no status is built).
    fn of_slots(slots: &[Arc<Slot>]) -> Self {
        let mut counts = Self::default();
        for slot in slots {
            if slot.ended_by_deadline_abort() {
                counts.aborted += 1;
                continue;
            }
            match slot.status_index() {
                2 => counts.completed += 1,
                3 => counts.failed += 1,
                _ => counts.cancelled += 1, // as `TaskOutcome::from_status` has it
            }
        }
        counts
    }
}

/// The report's counts and lines, worked out from the drained tasks' slots the first time they
/// are read: the drain itself only waits for the tasks (every one of them is terminal by then,
/// and its outcome fixed), so `shutdown` returns as soon as they have stopped. Reading the
/// counts takes one pass over the tasks; the lines (one `String` per id, sorted) are built on the
/// first call to [`ShutdownReport::tasks`] or [`ShutdownReport::outcome`].
struct Lines {
    total: usize,
    counts: OnceLock<Counts>,
    built: OnceLock<Box<[TaskReport]>>,
    /// The drained tasks, until the lines are built.
    drained: Mutex<Vec<Arc<Slot>>>,
}

/// How a drained task ended: `Aborted` if the drain's abort at the deadline is what ended it,
/// else by its terminal status.
fn outcome_of(slot: &Slot) -> TaskOutcome {
    if slot.ended_by_deadline_abort() {
        TaskOutcome::Aborted
    } else {
        TaskOutcome::from_status(slot.status())
    }
}

impl ShutdownReport {
    /// The report of a drain: every drained task, each terminal.
    pub(crate) fn new(drained: Vec<Arc<Slot>>, elapsed: Duration) -> Self {
        Self {
            lines: Arc::new(Lines {
                total: drained.len(),
                counts: OnceLock::new(),
                built: OnceLock::new(),
                drained: Mutex::new(drained),
            }),
            elapsed,
        }
    }

    fn counts(&self) -> Counts {
        *self.lines.counts.get_or_init(|| {
            let drained = self.lines.drained.lock().unwrap_or_else(PoisonError::into_inner);
            match self.lines.built.get() {
                Some(tasks) => Counts::of(tasks.iter().map(|task| &task.outcome)),
                None => Counts::of_slots(&drained),
            }
        })
    }

    #[cfg(feature = "serde")]
    fn from_lines(mut tasks: Vec<TaskReport>, elapsed: Duration) -> Self {
        tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Self {
            lines: Arc::new(Lines {
                total: tasks.len(),
                counts: OnceLock::from(Counts::of(tasks.iter().map(|task| &task.outcome))),
                built: OnceLock::from(tasks.into_boxed_slice()),
                drained: Mutex::default(),
            }),
            elapsed,
        }
    }

    /// Every task that was pending or running when the shutdown began, sorted by id.
    ///
    /// The lines are built on the first call (for 10 000 tasks, about a millisecond); later calls,
    /// on any clone, return them at once.
    #[must_use]
    pub fn tasks(&self) -> &[TaskReport] {
        // The counts first, while the drained tasks are still there to count.
        self.counts();
        self.lines.built.get_or_init(|| {
            let drained =
                std::mem::take(&mut *self.lines.drained.lock().unwrap_or_else(PoisonError::into_inner));
            let mut tasks: Vec<TaskReport> = drained
                .into_iter()
                .map(|slot| TaskReport {
                    id: slot.id().to_owned(),
                    outcome: outcome_of(&slot),
                })
                .collect();
            // Sorted by the lines' own copies of the ids: they sit close together in memory.
            tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            tasks.into_boxed_slice()
        })
    }

    /// How the task with this id ended, if it was drained.
    #[must_use]
    pub fn outcome(&self, id: &str) -> Option<&TaskOutcome> {
        let tasks = self.tasks();
        tasks
            .binary_search_by(|task| task.id.as_str().cmp(id))
            .ok()
            .map(|index| &tasks[index].outcome)
    }

    /// How long the drain took, from the signal to the last task stopping.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Number of tasks drained.
    #[must_use]
    pub fn total(&self) -> usize {
        self.lines.total
    }

    /// Number of tasks that completed.
    #[must_use]
    pub fn completed(&self) -> usize {
        self.counts().completed
    }

    /// Number of tasks that failed.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.counts().failed
    }

    /// Number of tasks that stopped on being signalled (or never started).
    #[must_use]
    pub fn cancelled(&self) -> usize {
        self.counts().cancelled
    }

    /// Number of tasks that had to be aborted at the timeout.
    #[must_use]
    pub fn aborted(&self) -> usize {
        self.counts().aborted
    }
}

impl fmt::Debug for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownReport")
            .field("tasks", &self.tasks())
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

impl PartialEq for ShutdownReport {
    fn eq(&self, other: &Self) -> bool {
        self.elapsed == other.elapsed && self.tasks() == other.tasks()
    }
}

impl Eq for ShutdownReport {}

/// The serialized shape: `{"tasks": [...], "elapsed": {...}}`.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "ShutdownReport")]
struct Shape<T> {
    tasks: T,
    elapsed: Duration,
}

#[cfg(feature = "serde")]
impl serde::Serialize for ShutdownReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Shape {
            tasks: self.tasks(),
            elapsed: self.elapsed,
        }
        .serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ShutdownReport {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shape = Shape::<Vec<TaskReport>>::deserialize(deserializer)?;
        Ok(Self::from_lines(shape.tasks, shape.elapsed))
    }
}
