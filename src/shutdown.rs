//! The shutdown drain: a `JoinSet` with one deadline for all tasks.

use std::sync::Arc;
use std::time::Duration;

use crate::sync::tokio;
use crate::sync::tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::registry::Draining;
use crate::report::{ShutdownReport, TaskOutcome, TaskReport};
use crate::status::TaskStatus;
use crate::worker::Shared;

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
    shared.observers.shutdown(&report);
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
