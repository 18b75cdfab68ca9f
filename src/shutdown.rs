//! The shutdown drain: every live task against one deadline, then a report.
//!
//! The registry is closed first (every later submit is refused), then its live slots are
//! collected, then their tokens are cancelled: a task that stops on the signal is in the report.
//! The drain waits for the tracker of live futures, not for each task: the count of live futures
//! reaching zero costs one atomic operation per task. At the deadline, the tasks still live are
//! aborted; then the drain waits for their futures to be dropped (a body blocking its thread
//! cannot be aborted mid-poll), so when `shutdown` returns no task code runs any more.

use std::sync::Arc;
use std::time::Duration;

use crate::sync::tokio;
use crate::sync::tokio::time::Instant;

use crate::report::ShutdownReport;
use crate::shared::Shared;
use crate::slot::Slot;

/// Closes the registry and takes every live task for the drain; `None` if a shutdown began
/// already. Must run before the tasks are signalled.
pub(crate) fn begin(shared: &Shared) -> Option<Vec<Arc<Slot>>> {
    if !shared.registry.close() {
        return None;
    }
    shared.tracker.close();
    Some(shared.registry.stop_live())
}

/// Waits for every drained task, all against one deadline, aborting those still running at it;
/// then publishes the report.
pub(crate) async fn drain(shared: Arc<Shared>, live: Vec<Arc<Slot>>, timeout: Duration) {
    let started = Instant::now();
    tracing::info!(tasks = live.len(), ?timeout, "worker shutting down");

    let in_time = tokio::time::timeout_at(started + timeout, shared.tracker.wait())
        .await
        .is_ok();
    if !in_time {
        for slot in &live {
            if !slot.is_terminal() {
                tracing::warn!(task_id = %slot.id(), ?timeout, "task did not stop within the shutdown timeout, aborting it");
                slot.abort_at_deadline();
            }
        }
        shared.tracker.wait().await;
    }

    if tracing::enabled!(tracing::Level::DEBUG) {
        for slot in &live {
            tracing::debug!(task_id = %slot.id(), status = %slot.status(), "task stopped");
        }
    }
    let report = ShutdownReport::new(live, started.elapsed());
    if tracing::enabled!(tracing::Level::INFO) {
        tracing::info!(
            completed = report.completed(),
            failed = report.failed(),
            cancelled = report.cancelled(),
            aborted = report.aborted(),
            elapsed = ?report.elapsed(),
            "worker stopped"
        );
    }
    shared.config.observers.shutdown(&report);
    shared.report.set(report);
}
