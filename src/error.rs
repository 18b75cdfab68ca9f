//! Error types, one enum per operation whose failures differ.

use thiserror::Error;

/// Why [`Worker::submit`](crate::Worker::submit) or
/// [`Worker::submit_with_context`](crate::Worker::submit_with_context) refused a task.
///
/// Whenever a submission is refused, the closure is dropped without being called.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The id is not usable as a task name (it is empty).
    #[error("invalid task id {id:?}: a task id must not be empty")]
    InvalidId {
        /// The id that was refused.
        id: String,
    },
    /// A task with this id is still pending or running; it was left untouched.
    #[error("task {id:?} is already pending or running")]
    DuplicateId {
        /// The id of the live task.
        id: String,
    },
    /// [`Worker::shutdown`](crate::Worker::shutdown) has begun; the worker accepts no more work.
    #[error("worker is shutting down, task {id:?} was not accepted")]
    ShuttingDown {
        /// The id of the refused task.
        id: String,
    },
    /// The worker already tracks [`max_tracked`](crate::WorkerBuilder::max_tracked) entries, even
    /// after removing what retention allows. Clean up finished tasks, or retry later.
    #[error("worker is at capacity ({limit} tracked tasks), task {id:?} was not accepted")]
    AtCapacity {
        /// The id of the refused task.
        id: String,
        /// The configured maximum number of tracked entries.
        limit: usize,
    },
}

impl SubmitError {
    /// The id of the task that was refused.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::InvalidId { id }
            | Self::DuplicateId { id }
            | Self::ShuttingDown { id }
            | Self::AtCapacity { id, .. } => id,
        }
    }
}

/// Why [`Worker::cancel`](crate::Worker::cancel) could not cancel a task.
///
/// Cancelling a task that already finished is not an error: `cancel` returns its status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CancelError {
    /// No task with this id is tracked (never submitted, or already cleaned up).
    #[error("no task with id {id:?}")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
}

impl CancelError {
    /// The id of the task that could not be cancelled.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::NotFound { id } => id,
        }
    }
}
