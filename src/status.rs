//! The status of a tracked task.

use std::fmt;

/// Where a task is in its life.
///
/// A task is `Pending` from the moment [`submit`](crate::Worker::submit) returns, `Running` once its
/// body starts, then reaches exactly one terminal status (`Completed`, `Failed` or `Cancelled`) that
/// never changes afterwards.
///
/// Feature `serde`: `Serialize` and `Deserialize`, tagged by `status`, with the failure in
/// `message`: `{"status": "running"}`, `{"status": "failed", "message": "disk full"}`.
///
/// # Examples
///
/// ```
/// use background_worker::TaskStatus;
///
/// let status = TaskStatus::Failed("disk full".into());
/// assert!(status.is_terminal());
/// assert_eq!(status.to_string(), "failed: disk full");
/// assert!(!TaskStatus::Running.is_terminal());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "status", content = "message", rename_all = "snake_case")
)]
pub enum TaskStatus {
    /// Accepted, waiting to start (for a concurrency permit, or for the runtime to poll it).
    Pending,
    /// The body is running.
    Running,
    /// The body returned `Ok(())`.
    Completed,
    /// The body returned an error or panicked. The message holds the error with its causes
    /// (`format!("{e:#}")`), or `panicked: <panic message>`.
    Failed(String),
    /// The task was cancelled, by [`cancel`](crate::Worker::cancel) or by
    /// [`shutdown`](crate::Worker::shutdown), before it could finish on its own.
    Cancelled,
}

impl TaskStatus {
    /// Returns `true` for `Completed`, `Failed` and `Cancelled`: statuses that never change again.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// The variant's name in lowercase (`"pending"`, `"running"`, `"completed"`, `"failed"`,
    /// `"cancelled"`), without the failure message.
    ///
    /// ```
    /// use background_worker::TaskStatus;
    /// assert_eq!(TaskStatus::Failed("boom".into()).name(), "failed");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed(_) => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// A dense index per variant, for per-status counters.
    pub(crate) fn index(&self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Running => 1,
            Self::Completed => 2,
            Self::Failed(_) => 3,
            Self::Cancelled => 4,
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(message) => write!(f, "failed: {message}"),
            other => f.write_str(other.name()),
        }
    }
}
