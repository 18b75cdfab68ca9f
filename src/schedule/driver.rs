//! The driver: one task per worker that has schedules. It sleeps until the earliest due tick of
//! the table (or at most [`MAX_SLEEP`], to re-read the wall clock), takes every due tick, and
//! submits each one as an ordinary task through [`submit_tick`].
//!
//! It holds the worker only weakly, upgrading it while it submits, so that dropping the last
//! `Worker` handle still stops every task (and, through `Schedules`' drop, this driver).

use std::sync::Arc;
use std::time::Duration;

use crate::sync::tokio;
use crate::sync::tokio::time::Instant;

use super::table::{Due, Table};
use super::tick::Tick;
use super::Overlap;
use crate::error::SubmitError;
use crate::worker::{WeakWorker, Worker};

/// The longest the driver sleeps without re-reading the wall clock: a wall clock that was
/// stepped, or a machine that was suspended, is noticed within this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub(crate) async fn drive(worker: WeakWorker, table: Arc<Table>) {
    loop {
        if table.stop.is_cancelled() {
            return;
        }
        let (due, next) = table.take_due();
        if !due.is_empty() {
            let Some(worker) = worker.upgrade() else { return };
            for run in due {
                if !submit_due(&worker, &table, run).await {
                    return;
                }
            }
            continue;
        }
        let latest = Instant::now() + MAX_SLEEP;
        let deadline = next.map_or(latest, |ms| table.instant_at(ms).min(latest));
        tokio::select! {
            () = table.stop.cancelled() => return,
            () = table.wake.notified() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Runs one due tick by its overlap policy; `false` once the worker refuses all work
/// (shutdown).
async fn submit_due(worker: &Worker, table: &Table, due: Due) -> bool {
    if table.stop.is_cancelled() {
        return false; // shutdown began while this batch was taken
    }
    if due.overlap == Overlap::Skip {
        if let Some(last) = &due.last {
            if worker
                .get_task_status(last)
                .await
                .is_some_and(|status| !status.is_terminal())
            {
                tracing::debug!(schedule = %due.tick.schedule(), last_run = %last, "tick skipped: the previous run is still live");
                table.skipped(&due);
                return true;
            }
        }
    }
    let id = due.tick.run_id();
    match submit_tick(worker, due.tick.clone(), Arc::clone(&due.work), due.timeout).await {
        Ok(()) => {
            table.ran(&due, id);
            true
        }
        Err(SubmitError::ShuttingDown { .. }) => false,
        Err(error) => {
            tracing::warn!(schedule = %due.tick.schedule(), %error, "scheduled run refused");
            table.skipped(&due);
            true
        }
    }
}

/// Submits one tick's run: the one place a tick becomes a task. A run is an ordinary task with
/// the id `NAME@MS`, whose body gets its [`TaskContext`](crate::TaskContext) and its [`Tick`],
/// bounded by the schedule's timeout.
///
/// Local only: every worker that has the schedule runs every tick. A claimed submission (one
/// id, one owner across a cluster) is meant to replace this one call, so that one replica runs
/// each tick.
pub(crate) async fn submit_tick(
    worker: &Worker,
    tick: Tick,
    work: super::table::Work,
    timeout: Option<Duration>,
) -> Result<(), SubmitError> {
    worker
        .submit_with_context(tick.run_id(), move |ctx| async move {
            let body = work(ctx, tick);
            match timeout {
                None => body.await,
                Some(limit) => match tokio::time::timeout(limit, body).await {
                    Ok(result) => result,
                    Err(_) => Err(anyhow::anyhow!("timed out after {limit:?}")),
                },
            }
        })
        .await
}
