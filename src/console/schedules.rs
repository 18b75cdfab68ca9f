//! The schedules in the console: `GET /schedules` (every schedule of the worker, with its
//! cadence, `next_run`, paused or not, and its last run) and `GET /jobs?schedule=NAME` (a
//! schedule's runs, newest first).
//!
//! A schedule's runs are paged by their ticks, not by submission: run ids are `NAME@MS`, so the
//! ticks of the schedule's cadence (newest first, from now back) name its runs, and each is
//! looked up by id: in this worker, then, with a mirror, in Redis, whichever replica ran it.
//! The cursor is the time of the last tick a page looked at.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Serialize;

use super::error::{ApiError, RETRY_AFTER_SECS};
use super::json::{unix_ms, JobPage, JobView};
use super::paging::{invalid_cursor, ListQuery};
use super::shared::Shared;
use crate::schedule::ScheduleInfo;
use crate::status::TaskStatus;

/// The bound on one page of a schedule's runs (one lookup per tick, in Redis with a mirror).
const RUNS_TIMEOUT: Duration = Duration::from_secs(3);

/// One schedule as `GET /schedules` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct ScheduleView {
    name: String,
    cadence: String,
    /// The next tick, ms since the Unix epoch; `null` while paused or without a next tick.
    next_run: Option<u64>,
    paused: bool,
    /// The latest run this replica submitted, as a job.
    last_run: Option<JobView>,
    runs: u64,
    skipped: u64,
    run_elsewhere: u64,
}

/// The answer of `GET /schedules`.
#[derive(Debug, Serialize)]
pub(crate) struct ScheduleList {
    schedules: Vec<ScheduleView>,
    count: usize,
}

fn view(console: &Shared, info: ScheduleInfo) -> ScheduleView {
    // A last run the worker no longer tracks (cleaned up) is shown with its id alone.
    let last_run = info
        .last_run
        .map(|last| match console.worker.task_info(&last.id) {
            Some(task) => console.view(task),
            None => {
                let mut job = JobView::bare(last.id, &TaskStatus::Completed);
                job.status = last.status.as_ref().map_or("unknown", TaskStatus::name);
                job
            }
        });
    ScheduleView {
        name: info.name,
        cadence: info.cadence,
        next_run: info.next_run.and_then(unix_ms),
        paused: info.paused,
        last_run,
        runs: info.runs,
        skipped: info.skipped,
        run_elsewhere: info.run_elsewhere,
    }
}

/// `GET /schedules`: every schedule of this worker.
pub(crate) fn list(console: &Shared) -> ScheduleList {
    let schedules: Vec<ScheduleView> = console
        .worker
        .schedules()
        .into_iter()
        .map(|info| view(console, info))
        .collect();
    ScheduleList {
        count: schedules.len(),
        schedules,
    }
}

/// `GET /jobs?schedule=NAME`: up to `limit` ticks of the schedule, newest first, from the
/// cursor (a tick time) back; each tick that has a run (here, or with a mirror anywhere in the
/// cluster) is on the page. The walk ends (no `next_cursor`) at a page that found no run. A
/// schedule this worker does not have lists the runs this worker still tracks.
pub(crate) async fn runs(console: &Shared, name: &str, query: &ListQuery) -> Result<JobPage, ApiError> {
    let before = match &query.cursor {
        None => u64::MAX,
        Some(cursor) => cursor.parse::<u64>().map_err(|_| invalid_cursor())?,
    };
    let wanted = |view: &JobView| {
        query.status.is_none_or(|status| status == view.status)
            && query
                .replica
                .as_deref()
                .is_none_or(|replica| Some(replica) == view.replica.as_deref())
    };
    let Some(ticks) = console.worker.schedule_ticks_before(name, before, query.limit) else {
        // Not a schedule here (any more): its runs this worker still tracks.
        let mut jobs: Vec<JobView> = console
            .worker
            .schedule_runs(name)
            .into_iter()
            .map(|info| console.view(info))
            .filter(|view| view.scheduled_at.is_some_and(|at| at < before))
            .filter(wanted)
            .collect();
        let more = jobs.len() > query.limit;
        jobs.truncate(query.limit);
        let next = more
            .then(|| {
                jobs.last()
                    .and_then(|job| job.scheduled_at)
                    .map(|at| at.to_string())
            })
            .flatten();
        return Ok(JobPage::new(jobs, next));
    };
    let walk = async {
        let mut jobs = Vec::new();
        let mut found = 0;
        for &tick in &ticks {
            let Some(job) = lookup(console, &format!("{name}@{tick}")).await? else {
                continue;
            };
            found += 1;
            if wanted(&job) {
                jobs.push(job);
            }
        }
        Ok::<_, ApiError>((jobs, found))
    };
    let (jobs, found) = tokio::time::timeout(RUNS_TIMEOUT, walk).await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the runs were not read within {RUNS_TIMEOUT:?}; retry, or ask a smaller limit"),
        )
        .retry_after(RETRY_AFTER_SECS)
    })??;
    let next = (found > 0 && ticks.len() == query.limit)
        .then(|| ticks.last().map(ToString::to_string))
        .flatten();
    Ok(JobPage::new(jobs, next))
}

/// The run `id`, from this worker or, with a mirror, from Redis.
async fn lookup(console: &Shared, id: &str) -> Result<Option<JobView>, ApiError> {
    if let Some(info) = console.worker.task_info(id) {
        return Ok(Some(console.view(info)));
    }
    #[cfg(feature = "redis")]
    if let Some(mirror) = &console.mirror {
        return match mirror.job(id).await {
            Ok(job) => Ok(job.map(JobView::from)),
            Err(cause) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the cluster view is unavailable ({cause})"),
            )
            .retry_after(RETRY_AFTER_SECS)),
        };
    }
    Ok(None)
}
