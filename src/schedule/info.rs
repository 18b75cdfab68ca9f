//! [`ScheduleInfo`]: a snapshot of one schedule.

use std::time::SystemTime;

use crate::status::TaskStatus;

/// A snapshot of one schedule: its cadence, its next tick, whether it is paused, and its last
/// run. From [`Worker::schedules`](crate::Worker::schedules),
/// [`Worker::schedule_info`](crate::Worker::schedule_info) and
/// [`Health::schedules`](crate::Health::schedules); it holds no lock.
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::{Schedule, TaskStatus, Worker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::new();
/// worker.schedule("sync", Schedule::every(Duration::from_secs(60)), |_ctx, _tick| async { Ok(()) })?;
/// tokio::time::sleep(Duration::from_secs(61)).await;
///
/// let info = worker.schedule_info("sync").unwrap();
/// assert_eq!(info.cadence, "every 60000 ms");
/// assert!(!info.paused);
/// let last = info.last_run.unwrap();
/// assert_eq!(last.status, Some(TaskStatus::Completed));
/// assert!(last.id.starts_with("sync@"));
/// assert_eq!(info.next_run.unwrap(), last.scheduled_at + Duration::from_secs(60));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// The schedule's name.
    pub name: String,
    /// Its cadence, for display: `every 300000 ms`, `every 300000 ms, offset 30000 ms`, or
    /// `cron "0 2 * * *" in Europe/Berlin`.
    pub cadence: String,
    /// The time of its next tick (before jitter); `None` while it is paused, or if its cadence
    /// has no tick left.
    pub next_run: Option<SystemTime>,
    /// Whether it is paused ([`Worker::pause_schedule`](crate::Worker::pause_schedule)).
    pub paused: bool,
    /// Its latest run, if it started one.
    pub last_run: Option<LastRun>,
    /// How many runs it submitted on this worker.
    pub runs: u64,
    /// How many ticks came but were not run: skipped because the previous run was still
    /// live ([`Overlap::Skip`](crate::Overlap::Skip)), or refused by the worker (at capacity).
    /// Ticks passed over after a pause or a stall ([`Missed`](crate::Missed)) are not counted.
    /// With a mirror, also the ticks whose claim failed (Redis unreachable or not known yet).
    pub skipped: u64,
    /// How many ticks another replica claimed, when the worker's ticks are claimed across a
    /// cluster (see [`Worker::schedule`](crate::Worker::schedule)): each ran there, not here.
    /// Always 0 without a mirror.
    #[cfg_attr(feature = "serde", serde(default))]
    pub run_elsewhere: u64,
}

/// A schedule's latest run, in a [`ScheduleInfo`].
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LastRun {
    /// The run's task id, `NAME@MS` (see [`Tick`](crate::Tick)).
    pub id: String,
    /// The time of its tick (before jitter).
    pub scheduled_at: SystemTime,
    /// The run's status when the snapshot was taken; `None` if the worker no longer tracks it
    /// (cleaned up, or removed by retention).
    pub status: Option<TaskStatus>,
}
