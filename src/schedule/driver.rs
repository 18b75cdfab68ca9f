//! The driver: one task per worker that has schedules. It sleeps until the earliest due tick of
//! the table (or at most [`MAX_SLEEP`], to re-read the wall clock), takes every due tick, and
//! submits each one as an ordinary task through [`submit_tick`].
//!
//! It holds the worker only weakly, upgrading it while it submits, so that dropping the last
//! `Worker` handle still stops every task (and, through `Schedules`' drop, this driver). With a
//! claimer (a mirror), each due tick is claimed in a task of its own, which holds the worker
//! for that one claim (bounded by the mirror's query timeout).

use std::sync::Arc;
use std::time::Duration;

use crate::sync::tokio;
use crate::sync::tokio::time::Instant;

use super::claimer::{Claimed, Submitter, TickBody};
use super::table::{Due, Table, Work};
use super::tick::Tick;
use super::Overlap;
use crate::context::TaskContext;
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
            // Claims are round trips to Redis: the due ticks of a batch are claimed side by
            // side, each in a task of its own, so that the last of many schedules is not late
            // by the sum of the others' claims. (A shutdown stops the driver through `stop`.)
            let claimed = table.claimer.is_set();
            for run in due {
                if claimed {
                    let (worker, table) = (worker.clone(), Arc::clone(&table));
                    tokio::spawn(async move { submit_due(&worker, &table, run).await });
                } else if !submit_due(&worker, &table, run).await {
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
    let submitted = submit_tick(
        worker,
        table,
        due.tick.clone(),
        Arc::clone(&due.work),
        due.timeout,
    )
    .await;
    match submitted {
        Claimed::Here => {
            table.ran(&due, id);
            true
        }
        Claimed::Elsewhere { replica } => {
            tracing::debug!(schedule = %due.tick.schedule(), run = %id, %replica, "tick claimed by another replica");
            table.ran_elsewhere(&due);
            true
        }
        Claimed::ShuttingDown => false,
        Claimed::Refused { reason } => {
            tracing::warn!(schedule = %due.tick.schedule(), run = %id, %reason, "scheduled run refused");
            table.skipped(&due);
            true
        }
    }
}

/// Submits one tick's run: the one place a tick becomes a task. A run is an ordinary task with
/// the id `NAME@MS`, whose body gets its [`TaskContext`] and its [`Tick`], bounded by the
/// schedule's timeout.
///
/// Without a claimer (`claimer.rs`) the run is a local submission: every worker that has the
/// schedule runs every tick. With one (a started Redis mirror), the claimer claims the tick
/// once for the whole cluster and spawns the run only if it got the claim; the body's tick
/// then carries the claim's fencing token. A claimer that was registered and is gone runs
/// nothing: never silently local.
async fn submit_tick(
    worker: &Worker,
    table: &Table,
    tick: Tick,
    work: Work,
    timeout: Option<Duration>,
) -> Claimed {
    let id = tick.run_id();
    let body = move |ctx: TaskContext, token: Option<u64>| {
        let tick = match token {
            Some(token) => tick.with_token(token),
            None => tick,
        };
        let body = work(ctx, tick);
        async move {
            match timeout {
                None => body.await,
                Some(limit) => match tokio::time::timeout(limit, body).await {
                    Ok(result) => result,
                    Err(_) => Err(anyhow::anyhow!("timed out after {limit:?}")),
                },
            }
        }
    };
    match table.claimer.submitter() {
        Submitter::Local => match worker.submit_with_context(id, move |ctx| body(ctx, None)).await {
            Ok(()) => Claimed::Here,
            Err(SubmitError::ShuttingDown { .. }) => Claimed::ShuttingDown,
            Err(error) => Claimed::Refused {
                reason: error.to_string(),
            },
        },
        Submitter::Claimer(claimer) => {
            let body: TickBody = Box::new(move |ctx, token| Box::pin(body(ctx, Some(token))));
            claimer.claim_tick(id, body).await
        }
        Submitter::Gone => Claimed::Refused {
            reason: "the mirror that claims this worker's ticks was dropped".to_owned(),
        },
    }
}
