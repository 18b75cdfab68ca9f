//! Track named background tasks on tokio.
//!
//! Services spawn background work (report generation, syncs, job endpoints) and then need to
//! answer: *is job X still running? Did it fail, and why? Cancel it! Shut down cleanly on
//! SIGTERM.* A bare [`tokio::spawn`] answers none of that. A [`Worker`] does:
//!
//! - [`submit`](Worker::submit) runs a named task; its [`TaskStatus`] moves `Pending` → `Running`
//!   → `Completed` / `Failed(message)` / `Cancelled` and can be queried by name at any time.
//! - [`cancel`](Worker::cancel) signals the task's own [`CancellationToken`], waits a bounded time,
//!   then aborts it. Tasks from [`submit_with_context`](Worker::submit_with_context) watch their
//!   token through a [`TaskContext`] and wind down on their own.
//! - A panic inside a task becomes `Failed("panicked: ...")`; the worker and other tasks go on.
//! - [`shutdown`](Worker::shutdown) stops accepting work, cancels every task, drains them all
//!   concurrently with one timeout, and returns a [`ShutdownReport`].
//! - For operators: [`task_info`](Worker::task_info) (times and [`Progress`]),
//!   [`tasks`](Worker::tasks), [`health`](Worker::health), a stream of status changes from
//!   [`subscribe`](Worker::subscribe), and memory bounds through
//!   [`retain_finished_for`](WorkerBuilder::retain_finished_for),
//!   [`max_finished`](WorkerBuilder::max_finished) and [`max_tracked`](WorkerBuilder::max_tracked).
//!
//! `Worker` is a cheap `Clone` around one `Arc`: keep one in `main`, hand clones to your handlers.
//! It is built on locks (a `DashMap` registry), not on an actor: a status query is a hash lookup.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use background_worker::{TaskStatus, Worker};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let worker = Worker::new();
//!
//! worker.submit("nightly-report", || async {
//!     tokio::time::sleep(Duration::from_secs(2)).await;
//!     Ok(())
//! }).await?;
//! assert_eq!(worker.get_task_status("nightly-report").await, Some(TaskStatus::Pending));
//!
//! worker.submit_with_context("sync", |ctx| async move {
//!     ctx.cancelled().await; // runs until told to stop
//!     Ok(())
//! }).await?;
//!
//! assert_eq!(worker.wait("nightly-report").await, Some(TaskStatus::Completed));
//! assert_eq!(worker.cancel("sync").await?, TaskStatus::Cancelled);
//!
//! // On SIGTERM:
//! let report = worker.shutdown().await;
//! assert_eq!(report.total(), 0); // nothing was left running
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `serde` | no      | `Serialize` / `Deserialize` for [`TaskStatus`], [`TaskInfo`], [`Progress`], [`Health`], [`TaskEvent`] and [`ShutdownReport`] with its parts |
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken

mod builder;
mod context;
mod error;
mod info;
mod latch;
mod observe;
mod progress;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod report;
mod run;
mod shutdown;
mod status;
mod sync;
mod times;
mod worker;

#[cfg(feature = "redis")]
pub use crate::redis::{
    ClusterError, ClusterJob, ClusterStatus, InvalidCursor, MirrorBuilder, MirrorHealth, MirrorObserver,
    Page, PageCursor, RedisMirror, DEFAULT_LEASE, DEFAULT_NAMESPACE, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RETENTION,
};
pub use builder::{WorkerBuilder, DEFAULT_TIMEOUT};
pub use context::TaskContext;
pub use error::{CancelError, SubmitError};
pub use info::{Health, TaskEvent, TaskInfo};
pub use observe::{Observer, Transition};
pub use progress::Progress;
pub use report::{ShutdownReport, TaskOutcome, TaskReport};
pub use status::TaskStatus;
pub use worker::Worker;

/// The README's Rust examples, compiled and run as doctests so the README cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
