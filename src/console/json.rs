//! The JSON shapes the console answers: [`JobView`] (one job) and [`JobPage`] (a page of them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::info::TaskInfo;
use crate::progress::Progress;
use crate::status::TaskStatus;

/// One job as the console shows it: the answer of `GET /jobs/{id}` and `DELETE /jobs/{id}`, an
/// item of `GET /jobs`, and the `data:` of a `GET /events` event.
///
/// ```json
/// {"job_id": "a1", "status": "failed", "message": "disk full", "replica": null,
///  "progress": {"fraction": 0.5, "done": null, "total": null, "message": null},
///  "submitted_at_ms": 1700000000000, "started_at_ms": 1700000000001,
///  "finished_at_ms": 1700000000002, "queued_ms": 1, "run_time_ms": 1}
/// ```
///
/// `fencing_token` is there only for a claimed submission (with a Redis mirror, see
/// [`Console::claim_refused`](super::Console::claim_refused) and `RedisMirror::submit`): an
/// integer, strictly greater than every earlier token of the same id. An unclaimed job has no
/// `fencing_token` field at all (never `null`).
///
/// `status` is one of `pending`, `running`, `completed`, `failed`, `cancelled` and, with a
/// Redis mirror, `lost`; `message` is there only for `failed`. `replica` is the replica that owns
/// the job with a mirror, `null` without. Times are milliseconds (since the Unix epoch for the
/// `_at` fields); a field that does not apply is `null`. A schedule's run (see
/// [`Worker::schedule`](crate::Worker::schedule)) also has `"schedule"` (its name) and
/// `"scheduled_at"` (its tick's time, ms since the Unix epoch), read from its id `NAME@MS`;
/// other jobs leave both out.
///
/// # Examples
///
/// ```
/// use background_worker::console::JobView;
/// use background_worker::Worker;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let worker = Worker::new();
/// worker.submit("a1", || async { Ok(()) }).await.unwrap();
/// let view = JobView::from(worker.task_info("a1").unwrap());
/// let json = serde_json::to_value(&view).unwrap();
/// assert_eq!(json["job_id"], "a1");
/// assert_eq!(json["status"], "pending");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobView {
    /// The job's id.
    pub job_id: String,
    /// Its status's name.
    pub status: &'static str,
    /// The failure message of a `failed` job (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The replica that owns it (with a Redis mirror).
    pub replica: Option<String>,
    /// The latest progress it reported.
    pub progress: Option<Progress>,
    /// The fencing token of a claimed submission (left out for an unclaimed one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    /// When it was submitted, in ms since the Unix epoch.
    pub submitted_at_ms: Option<u64>,
    /// When its body started.
    pub started_at_ms: Option<u64>,
    /// When it finished.
    pub finished_at_ms: Option<u64>,
    /// How long it waited before starting (or until now, or until it ended without starting).
    pub queued_ms: Option<u64>,
    /// How long its body ran (until now if it still runs).
    pub run_time_ms: Option<u64>,
    /// For a schedule's run (an id of the form `NAME@MS`, see [`Tick`](crate::Tick)): the
    /// schedule's name (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// For a schedule's run: its tick's time, in ms since the Unix epoch (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<u64>,
}

impl JobView {
    /// A view with only an id and a status, for a job whose entry is gone but whose final
    /// status is known.
    ///
    /// ```
    /// use background_worker::console::JobView;
    /// use background_worker::TaskStatus;
    ///
    /// let view = JobView::bare("a1", &TaskStatus::Failed("disk full".into()));
    /// assert_eq!((view.status, view.message.as_deref()), ("failed", Some("disk full")));
    /// assert!(!view.is_live());
    /// ```
    #[must_use]
    pub fn bare(job_id: impl Into<String>, status: &TaskStatus) -> Self {
        let (status, message) = split(status);
        let job_id = job_id.into();
        let (schedule, scheduled_at) = tick_of(&job_id);
        Self {
            schedule,
            scheduled_at,
            job_id,
            status,
            message,
            replica: None,
            progress: None,
            fencing_token: None,
            submitted_at_ms: None,
            started_at_ms: None,
            finished_at_ms: None,
            queued_ms: None,
            run_time_ms: None,
        }
    }

    /// Whether the job is pending or running.
    ///
    /// ```
    /// use background_worker::console::JobView;
    /// use background_worker::TaskStatus;
    ///
    /// assert!(JobView::bare("a1", &TaskStatus::Running).is_live());
    /// ```
    #[must_use]
    pub fn is_live(&self) -> bool {
        matches!(self.status, "pending" | "running")
    }
}

/// The schedule and the tick of a run id `NAME@MS`.
fn tick_of(id: &str) -> (Option<String>, Option<u64>) {
    match crate::schedule::Tick::from_run_id(id) {
        Some(tick) => (Some(tick.schedule().to_owned()), Some(tick.scheduled_at_ms())),
        None => (None, None),
    }
}

fn split(status: &TaskStatus) -> (&'static str, Option<String>) {
    match status {
        TaskStatus::Failed(message) => ("failed", Some(message.clone())),
        other => (other.name(), None),
    }
}

impl From<TaskInfo> for JobView {
    fn from(info: TaskInfo) -> Self {
        let (status, message) = split(&info.status);
        let (schedule, scheduled_at) = tick_of(&info.id);
        Self {
            schedule,
            scheduled_at,
            job_id: info.id,
            status,
            message,
            replica: None,
            progress: info.progress,
            fencing_token: None,
            submitted_at_ms: unix_ms(info.submitted_at),
            started_at_ms: info.started_at.and_then(unix_ms),
            finished_at_ms: info.finished_at.and_then(unix_ms),
            queued_ms: Some(millis(info.queued)),
            run_time_ms: info.run_time.map(millis),
        }
    }
}

#[cfg(feature = "redis")]
impl From<crate::redis::ClusterJob> for JobView {
    fn from(job: crate::redis::ClusterJob) -> Self {
        use crate::redis::ClusterStatus;
        let now = SystemTime::now();
        let between = |from: SystemTime, to: SystemTime| millis(to.duration_since(from).unwrap_or_default());
        let queued_until = job.started_at.or(job.finished_at).unwrap_or(now);
        let message = match &job.status {
            ClusterStatus::Failed(message) => Some(message.clone()),
            _ => None,
        };
        let (schedule, scheduled_at) = tick_of(&job.id);
        Self {
            schedule,
            scheduled_at,
            queued_ms: Some(between(job.submitted_at, queued_until)),
            run_time_ms: job
                .started_at
                .map(|started| between(started, job.finished_at.unwrap_or(now))),
            submitted_at_ms: unix_ms(job.submitted_at),
            started_at_ms: job.started_at.and_then(unix_ms),
            finished_at_ms: job.finished_at.and_then(unix_ms),
            status: job.status.name(),
            message,
            job_id: job.id,
            replica: Some(job.replica),
            progress: job.progress,
            fencing_token: job.fencing_token,
        }
    }
}

/// The answer of `GET /jobs`: one page, newest submission first.
///
/// ```json
/// {"jobs": [...], "count": 2, "next_cursor": "41"}
/// ```
///
/// `next_cursor` is `null` on the last page; otherwise pass it back as `?cursor=` for the next
/// one. A page may hold fewer than `limit` jobs and still have a `next_cursor` (when a filter
/// matched few of the jobs scanned): follow it until it is `null`. With a Redis mirror,
/// `cluster` says whether the page comes from the whole cluster (`true`) or, while Redis does
/// not answer, from this replica alone (`false`, with the cause in `error`).
///
/// # Examples
///
/// ```
/// use background_worker::console::JobPage;
///
/// let page = JobPage::new(Vec::new(), None);
/// assert_eq!(serde_json::to_string(&page).unwrap(), r#"{"jobs":[],"count":0,"next_cursor":null}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobView>,
    /// How many jobs are on this page.
    pub count: usize,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
    /// With a mirror: whether the page covers the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<bool>,
    /// With a mirror: why the page covers this replica only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobPage {
    /// A page of `jobs`, with the cursor of the next page if there is one.
    #[must_use]
    pub fn new(jobs: Vec<JobView>, next_cursor: Option<String>) -> Self {
        Self {
            count: jobs.len(),
            jobs,
            next_cursor,
            cluster: None,
            error: None,
        }
    }
}

pub(crate) fn unix_ms(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(millis)
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
