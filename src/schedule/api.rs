//! The schedule methods of [`Worker`].

use std::future::Future;
use std::sync::{Arc, Weak};

use crate::sync::tokio;

use super::claimer::TickClaimer;
use super::config::Schedule;
use super::driver::drive;
use super::error::ScheduleError;
use super::info::ScheduleInfo;
use super::table::{AddRefused, Work};
use super::tick::{parse_run_id, Tick};
use crate::context::TaskContext;
use crate::info::TaskInfo;
use crate::sync::tokio::time::Instant;
use crate::worker::Worker;

impl Worker {
    /// Makes `claimer` submit this worker's ticks (see `claimer.rs`): the Redis mirror's hook,
    /// called by its `start`. `false` if a claimer was registered already (it stays).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the mirror's
    pub(crate) fn claim_ticks_with(&self, claimer: Weak<dyn TickClaimer>) -> bool {
        self.schedule_state().table.claimer.set(claimer)
    }
}

/// The longest schedule name, in bytes.
pub const MAX_SCHEDULE_NAME: usize = 128;

impl Worker {
    /// Runs `work` on every tick of `schedule`, each run as an ordinary task named
    /// `NAME@MS` (the schedule's name, `@`, the tick's time in milliseconds since the Unix
    /// epoch; see [`Tick`]).
    ///
    /// A run is a task like any other: it has a status, can be waited for, cancelled, listed
    /// ([`schedule_runs`](Worker::schedule_runs) lists a schedule's runs), is counted in the
    /// metrics and drained by [`shutdown`](Worker::shutdown). Its body is made by calling `work`
    /// with the run's [`TaskContext`] (as [`submit_with_context`](Worker::submit_with_context)
    /// does) and its [`Tick`], when the run starts. Panics and errors end the run as they end
    /// any task, and the schedule goes on.
    ///
    /// The first tick is the first one after now: a schedule added at 10:02 with a period of
    /// five minutes first runs at 10:05. [`Schedule`] lists the policies (overlap, missed ticks,
    /// jitter, timeout) and their defaults.
    ///
    /// All of a worker's schedules share one driver task and one timer, spawned with the first
    /// schedule: an idle schedule costs a map entry, not a task. From
    /// [`shutdown`](Worker::shutdown) on, and once the last handle is dropped, no schedule ticks
    /// any more.
    ///
    /// The table of schedules belongs to the worker: a body that captures a `Worker` clone
    /// keeps the worker alive until [`shutdown`](Worker::shutdown) or
    /// [`remove_schedule`](Worker::remove_schedule) drops it.
    ///
    /// **Across replicas.** Without a mirror, ticks run on this worker alone: several replicas
    /// with the same schedule each run every tick (they do agree on the ticks and their ids,
    /// which come from the tick's own time, not from when each replica woke up). Once a
    /// `RedisMirror` (feature `redis`) is started on this worker, every tick is a claimed
    /// submission of its run id (as `RedisMirror::submit_with_context`), claimed once: the
    /// first replica whose claim reaches Redis runs the tick, and every other replica, even one
    /// that asks after that run ended, counts it in
    /// [`ScheduleInfo::run_elsewhere`](crate::ScheduleInfo::run_elsewhere) and runs nothing.
    /// So each tick runs at most once in the namespace, on a live replica that has the
    /// schedule; when a replica dies, the next tick is claimed by a live one: only a tick the
    /// dead replica had claimed is lost (its record reads `lost` once its lease expires). The
    /// body reads the claim's fencing token from [`Tick::fencing_token`]. A tick whose claim
    /// fails (Redis unreachable within the query timeout, or not known yet after a Redis
    /// restart) is not run by this replica and counts as
    /// [`skipped`](crate::ScheduleInfo::skipped): never silently local. Dropping the mirror
    /// while the worker lives stops this worker's ticks for the same reason. The
    /// [`Overlap::Skip`](crate::Overlap::Skip) check reads this replica's last run only.
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
    /// worker.schedule("cleanup", Schedule::every(Duration::from_secs(300)), |ctx, tick| async move {
    ///     tracing::info!(run = ctx.id(), due = ?tick.scheduled_at(), "cleaning up");
    ///     Ok(())
    /// })?;
    ///
    /// tokio::time::sleep(Duration::from_secs(900)).await; // three ticks: the first within 300 s
    /// let runs = worker.schedule_runs("cleanup");
    /// assert_eq!(runs.len(), 3);
    /// assert!(runs.iter().all(|run| run.status == TaskStatus::Completed));
    /// assert!(runs[0].id.starts_with("cleanup@")); // the newest first
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Two replicas with the same schedule and a mirror each (feature `redis`): every tick runs
    /// on one of them.
    ///
    /// ```
    /// # #[cfg(feature = "redis")]
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use background_worker::{RedisMirror, Schedule, Worker};
    ///
    /// # // Runs against the test suite's redis-server (`.ci/run` starts one); skipped without it.
    /// # let Ok(port) = std::env::var("BACKGROUND_WORKER_REDIS_PORT") else { return Ok(()) };
    /// # let url = format!("redis://127.0.0.1:{port}");
    /// # let namespace = format!("doc-schedule-{}", std::process::id());
    /// let mut replicas = Vec::new();
    /// for name in ["web-1", "web-2"] {
    ///     let mirror = RedisMirror::builder(url.as_str())
    ///         .namespace(namespace.as_str())
    ///         .replica(name)
    ///         .lease(Duration::from_millis(500))
    ///         .build()?;
    ///     let worker = Worker::builder().observer(mirror.observer()).build();
    ///     mirror.start(&worker)?; // from now on, this worker's ticks are claimed
    ///     worker.schedule("sync", Schedule::every(Duration::from_millis(100)), |_ctx, tick| async move {
    ///         let token = tick.fencing_token().expect("a claimed tick has a token");
    ///         tracing::info!(token, "syncing"); // fence the writes with it
    ///         Ok(())
    ///     })?;
    ///     replicas.push((mirror, worker));
    /// }
    ///
    /// tokio::time::sleep(Duration::from_secs(2)).await;
    /// let ran: Vec<_> = replicas.iter().flat_map(|(_, worker)| worker.schedule_runs("sync")).collect();
    /// let mut ticks: Vec<_> = ran.iter().map(|run| run.id.clone()).collect();
    /// ticks.sort();
    /// ticks.dedup();
    /// assert_eq!(ticks.len(), ran.len()); // no tick ran on both
    /// let elsewhere: u64 = replicas
    ///     .iter()
    ///     .map(|(_, worker)| worker.schedule_info("sync").unwrap().run_elsewhere)
    ///     .sum();
    /// assert!(elsewhere > 0); // each replica saw ticks the other one ran
    ///
    /// for (mirror, worker) in replicas {
    ///     worker.shutdown().await;
    ///     mirror.close(Duration::from_secs(5)).await?;
    /// }
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "redis"))]
    /// # fn main() {}
    /// ```
    ///
    /// # Errors
    ///
    /// Nothing is registered and `work` is dropped when:
    /// - the name is empty, longer than [`MAX_SCHEDULE_NAME`] bytes, or holds an `@` or a
    ///   control character: [`ScheduleError::InvalidName`];
    /// - this worker has a schedule of that name: [`ScheduleError::DuplicateName`];
    /// - the period is under a millisecond: [`ScheduleError::InvalidPeriod`];
    /// - [`shutdown`](Worker::shutdown) has begun: [`ScheduleError::ShuttingDown`].
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime (the first schedule spawns the driver), before
    /// anything is registered.
    #[track_caller]
    pub fn schedule<F, Fut>(
        &self,
        name: impl Into<String>,
        schedule: Schedule,
        work: F,
    ) -> Result<(), ScheduleError>
    where
        F: Fn(TaskContext, Tick) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        if let Some(reason) = invalid_name(&name) {
            return Err(ScheduleError::InvalidName { name, reason });
        }
        let cadence = match schedule.cadence.cadence() {
            Ok(cadence) => cadence,
            Err(period) => return Err(ScheduleError::InvalidPeriod { name, period }),
        };
        if self.is_shutting_down() {
            return Err(ScheduleError::ShuttingDown { name });
        }
        // Checked before anything is registered: the first schedule spawns the driver.
        assert!(
            tokio::runtime::Handle::try_current().is_ok(),
            "Worker::schedule must be called from within a tokio runtime"
        );
        let work: Work = Arc::new(move |ctx, tick| Box::pin(work(ctx, tick)));
        let table = &self.schedule_state().table;
        match table.add(Arc::from(name.as_str()), cadence, &schedule, work) {
            Ok(spawn) => {
                if spawn {
                    tokio::spawn(drive(self.downgrade(), Arc::clone(table)));
                }
                tracing::debug!(schedule = %name, "schedule added");
                Ok(())
            }
            Err(AddRefused::Duplicate) => Err(ScheduleError::DuplicateName { name }),
            Err(AddRefused::Stopped) => Err(ScheduleError::ShuttingDown { name }),
        }
    }

    /// Pauses the schedule `name`: no tick is run until [`resume_schedule`](Worker::resume_schedule).
    /// Runs already started go on, and so does a tick the driver took just before this call
    /// (its run is being submitted). Pausing a paused schedule changes nothing. Returns `false` if
    /// there is no schedule of that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::{Missed, Schedule, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let worker = Worker::new();
    /// let every_minute = Schedule::every(Duration::from_secs(60)).missed(Missed::RunLatest);
    /// worker.schedule("sync", every_minute, |_ctx, _tick| async { Ok(()) })?;
    ///
    /// assert!(worker.pause_schedule("sync"));
    /// tokio::time::sleep(Duration::from_secs(600)).await;
    /// assert_eq!(worker.schedule_runs("sync").len(), 0);
    ///
    /// assert!(worker.resume_schedule("sync")); // the latest missed tick runs at once
    /// # for _ in 0..10 { tokio::task::yield_now().await; }
    /// assert_eq!(worker.schedule_runs("sync").len(), 1);
    /// assert!(!worker.pause_schedule("nope"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn pause_schedule(&self, name: &str) -> bool {
        self.schedule_state().table.pause(name)
    }

    /// Resumes the paused schedule `name`. The ticks that fell during the pause are missed
    /// ticks: by the schedule's [`Missed`](crate::Missed) policy, the latest of them runs at
    /// once, or none does. Resuming a schedule that is not paused changes nothing. Returns
    /// `false` if there is no schedule of that name.
    pub fn resume_schedule(&self, name: &str) -> bool {
        self.schedule_state().table.resume(name)
    }

    /// Removes the schedule `name`: no tick of it runs any more, and its body factory is
    /// dropped. Runs already started go on, as does a tick the driver took just before this
    /// call, and stay listed by
    /// [`schedule_runs`](Worker::schedule_runs). The name can then be scheduled again. Returns
    /// `false` if there is no schedule of that name.
    pub fn remove_schedule(&self, name: &str) -> bool {
        self.schedule_state().table.remove(name)
    }

    /// Returns `true` if this worker has a schedule named `name`.
    #[must_use]
    pub fn has_schedule(&self, name: &str) -> bool {
        self.schedule_state().table.contains(name)
    }

    /// Snapshots of every schedule, sorted by name: cadence, next tick, paused or not, last run
    /// with its status. Takes the schedule table's lock once, then reads each last run's status
    /// from the registry.
    #[must_use]
    pub fn schedules(&self) -> Vec<ScheduleInfo> {
        let infos = self.schedules_table().infos(|_| true);
        self.with_statuses(infos)
    }

    /// A snapshot of the schedule `name`, or `None` if there is none. See [`ScheduleInfo`].
    #[must_use]
    pub fn schedule_info(&self, name: &str) -> Option<ScheduleInfo> {
        let infos = self.schedules_table().infos(|candidate| candidate == name);
        self.with_statuses(infos).pop()
    }

    /// Snapshots of the tracked runs of the schedule `name`, the newest tick first: every
    /// tracked task whose id is `NAME@MS` (see [`Tick`]), whether or not the schedule still
    /// exists. Runs removed by retention or cleanup are not listed. A task submitted by hand
    /// with an id of that form is listed too.
    ///
    /// Walks the registry once (one shard at a time, as [`tasks`](Worker::tasks) does).
    #[must_use]
    pub fn schedule_runs(&self, name: &str) -> Vec<TaskInfo> {
        let now = Instant::now();
        let mut runs: Vec<(u64, TaskInfo)> = self
            .shared()
            .registry
            .slots(|_| true)
            .into_iter()
            .filter_map(|slot| {
                let (schedule, at) = parse_run_id(slot.id())?;
                (schedule == name).then(|| (at, slot.info(now)))
            })
            .collect();
        runs.sort_unstable_by_key(|run| std::cmp::Reverse(run.0));
        runs.into_iter().map(|(_, info)| info).collect()
    }

    /// The number of schedules.
    #[must_use]
    pub fn schedule_count(&self) -> usize {
        self.schedules_table().len()
    }

    /// Up to `count` tick times (ms since the epoch) of the schedule `name` before `before`
    /// and not after now, newest first, by its cadence; `None` if there is no such schedule.
    /// For listing a schedule's runs across a cluster, by their ids.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // the console's
    pub(crate) fn schedule_ticks_before(&self, name: &str, before: u64, count: usize) -> Option<Vec<u64>> {
        self.schedules_table().ticks_before(name, before, count)
    }

    fn schedules_table(&self) -> &super::table::Table {
        &self.schedule_state().table
    }

    fn with_statuses(&self, mut infos: Vec<ScheduleInfo>) -> Vec<ScheduleInfo> {
        let registry = &self.shared().registry;
        for last in infos.iter_mut().filter_map(|info| info.last_run.as_mut()) {
            last.status = registry.status(&last.id);
        }
        infos
    }
}

/// What is wrong with a schedule name, if anything.
fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a schedule name must not be empty")
    } else if name.len() > MAX_SCHEDULE_NAME {
        Some("a schedule name must be at most 128 bytes")
    } else if name.contains('@') {
        Some("a schedule name must not contain '@'")
    } else if name.chars().any(char::is_control) {
        Some("a schedule name must not contain control characters")
    } else {
        None
    }
}
