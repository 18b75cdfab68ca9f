//! The shutdown drain: every live task against one deadline, then a report.
//!
//! The registry is closed first (every later submit is refused), then its live slots are
//! collected, then each one is marked, its token cancelled and its waits for the stop woken (or
//! its task aborted), in the order of the slots' addresses: a task that stops on the signal is
//! in the report.
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

/// Closes the registry, takes every live task for the drain and tells each one to stop; `None`
/// if a shutdown began already. The live tasks are taken before any is signalled: one that stops
/// on the signal would otherwise be terminal, and missing from the report, by the time the drain
/// looks.
pub(crate) fn begin(shared: &Shared) -> Option<Vec<Arc<Slot>>> {
    if !shared.registry.close() {
        return None;
    }
    shared.tracker.close();
    Some(stop_all(shared))
}

/// Tells every live task to stop (marks it, then cancels its token and wakes its waits for the
/// stop, or aborts it, see [`Slot::stop`]) and returns the tasks. Every live slot is collected
/// before any task is told, and no registry guard is held while they are told.
///
/// The slots are told in the order of their addresses (as
/// [`Registry::live`](crate::registry::Registry::live) returns them), not in the map's (hash)
/// order. Slots, tokens and task cells are allocated as tasks are submitted, so that order walks
/// memory forwards: the tasks wake in that order, run in it, and the drain reads their memory
/// the way the hardware prefetches it. In hash order, every slot, token and task cell of a
/// large drain is a miss of its own (BENCHMARKS.md: the drain measured both ways).
///
/// Each task has a token of its own rather than a child of a worker-wide one: creating and
/// dropping a child token takes its parent's lock, one lock that every thread would take twice
/// per task. A parent's cancel would visit every child just the same.
pub(crate) fn stop_all(shared: &Shared) -> Vec<Arc<Slot>> {
    let live = shared.registry.live();
    for slot in &live {
        slot.stop().signal();
    }
    live
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
