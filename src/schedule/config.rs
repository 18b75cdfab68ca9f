//! [`Schedule`]: a cadence and the policies of one schedule.

use std::time::Duration;

use super::cadence::Cadence;
#[cfg(feature = "cron")]
use super::error::CronError;

/// When a schedule runs and what it does about overlaps, missed ticks, jitter and slow runs.
/// Add it to a worker with [`Worker::schedule`](crate::Worker::schedule).
///
/// The cadence is either a fixed period ([`every`](Self::every), optionally
/// [`offset`](Self::offset)) or, with the feature `cron`, a cron expression
/// ([`cron`](Self::cron), [`cron_in`](Self::cron_in)). Either way the tick times are wall-clock
/// instants computed from the cadence alone (a period's ticks are aligned to the Unix epoch), so
/// two processes with the same schedule agree on every tick, whenever each one started.
///
/// **The clock.** Ticks are read against the wall clock (`SystemTime`), re-read at every tick,
/// so a stepped clock or a suspended machine is followed within a minute at most. Timers run on
/// tokio's clock: under tokio's paused clock (`start_paused` tests, tokio's `test-util`), which
/// does not move `SystemTime`, a worker's schedules follow tokio's clock from the wall-clock time
/// read when its first schedule was added, so paused-time tests drive them like any timer.
///
/// Policies, with their defaults:
///
/// | policy | default | the other choice |
/// |--------|---------|------------------|
/// | [`overlap`](Self::overlap) | [`Overlap::Skip`]: no run while the previous one is pending or running | [`Overlap::Allow`] |
/// | [`missed`](Self::missed) | [`Missed::RunLatest`]: after a pause or a stall, run the latest missed tick once | [`Missed::Skip`] |
/// | [`jitter`](Self::jitter) | none | a delay in `0..=bound` derived from the name and the tick |
/// | [`timeout`](Self::timeout) | none | the run ends as `Failed("timed out after ...")` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::{Missed, Overlap, Schedule};
///
/// // Every five minutes, at :00:30, :05:30, ... (UTC), each run within a minute.
/// let schedule = Schedule::every(Duration::from_secs(300))
///     .offset(Duration::from_secs(30))
///     .overlap(Overlap::Skip)
///     .missed(Missed::Skip)
///     .jitter(Duration::from_secs(5))
///     .timeout(Duration::from_secs(60));
/// # drop(schedule);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a schedule does nothing until it is added with `Worker::schedule`"]
pub struct Schedule {
    pub(crate) cadence: CadenceSpec,
    pub(crate) overlap: Overlap,
    pub(crate) missed: Missed,
    pub(crate) jitter: Duration,
    pub(crate) timeout: Option<Duration>,
}

/// A cadence as the user gave it (a period is validated when the schedule is added).
#[derive(Debug, Clone)]
pub(crate) enum CadenceSpec {
    Every {
        period: Duration,
        offset: Duration,
    },
    #[cfg(feature = "cron")]
    Cron(Box<super::cron::CronCadence>),
}

impl CadenceSpec {
    /// The validated cadence, or the period that is too short.
    pub(crate) fn cadence(&self) -> Result<Cadence, Duration> {
        match self {
            Self::Every { period, offset } => Cadence::every(*period, *offset).ok_or(*period),
            #[cfg(feature = "cron")]
            Self::Cron(cron) => Ok(Cadence::Cron(cron.clone())),
        }
    }
}

/// What a schedule does with a tick that comes while its previous run is still pending or
/// running. See [`Schedule::overlap`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overlap {
    /// The tick is skipped (counted in [`ScheduleInfo::skipped`](crate::ScheduleInfo::skipped)):
    /// at most one run of the schedule is pending or running at a time. The default.
    #[default]
    Skip,
    /// The tick runs anyway, beside the previous run (each run has its own id).
    Allow,
}

/// What a schedule does when it finds that more than one tick has passed since it last looked:
/// after [`resume_schedule`](crate::Worker::resume_schedule) (the ticks that fell during the
/// pause), or when the worker's runtime or machine stalled past a whole tick. See
/// [`Schedule::missed`].
///
/// A tick that is merely late (its time passed, the next one's has not) is not missed: it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missed {
    /// Runs the latest of the missed ticks once, at once; the earlier ones are dropped. The
    /// default: a clean-up or sync catches up once, not once per missed tick.
    #[default]
    RunLatest,
    /// Drops every missed tick and waits for the next tick after now.
    Skip,
}

impl Schedule {
    /// Ticks every `period`, at the whole multiples of `period` since the Unix epoch (UTC): every
    /// 5 minutes means :00, :05, :10, ... past each hour. Counted in whole milliseconds
    /// (sub-millisecond parts are dropped); a period under 1 ms is refused when the schedule is
    /// added ([`ScheduleError::InvalidPeriod`](crate::ScheduleError::InvalidPeriod)).
    ///
    /// Needs no feature.
    pub fn every(period: Duration) -> Self {
        Self::with_cadence(CadenceSpec::Every {
            period,
            offset: Duration::ZERO,
        })
    }

    /// Shifts the ticks of [`every`](Self::every) by `offset` (taken modulo the period):
    /// `every(5 min).offset(30 s)` ticks at :00:30, :05:30, ... A cron cadence has no offset;
    /// for one, this changes nothing.
    pub fn offset(mut self, offset: Duration) -> Self {
        match &mut self.cadence {
            CadenceSpec::Every { offset: old, .. } => *old = offset,
            #[cfg(feature = "cron")]
            CadenceSpec::Cron(_) => {}
        }
        self
    }

    /// Ticks where the cron `expression` matches, read in UTC. The expression has 5 fields
    /// (minute, hour, day of month, month, day of week) or 6 (seconds first), with the usual
    /// `*`, lists, ranges, steps, names (`MON`, `JAN`), `L`, `W` and `#`; a day matches if its
    /// day of month or its day of week does (POSIX). Parsed by the `croner` crate, see
    /// [`cron_in`](Self::cron_in) for time zones.
    ///
    /// ```
    /// use background_worker::{CronError, Schedule};
    ///
    /// let every_ten_seconds = Schedule::cron("*/10 * * * * *").unwrap();
    /// let nightly = Schedule::cron("0 2 * * *").unwrap();
    /// assert!(matches!(Schedule::cron("61 * * * *"), Err(CronError::InvalidExpression { .. })));
    /// # drop((every_ten_seconds, nightly));
    /// ```
    ///
    /// # Errors
    ///
    /// [`CronError::InvalidExpression`] if the expression does not parse,
    /// [`CronError::NoTicks`] if it matches no date from now on. Never panics.
    #[cfg(feature = "cron")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cron")))]
    pub fn cron(expression: &str) -> Result<Self, CronError> {
        Self::cron_in(expression, "UTC")
    }

    /// As [`cron`](Self::cron), read in the IANA time zone `zone` (`"Europe/Berlin"`,
    /// `"America/New_York"`, `"UTC"`). Around daylight-saving changes, a local time that occurs
    /// twice ticks once, at its first occurrence, and a local time that does not occur is
    /// skipped (croner's rules).
    ///
    /// ```
    /// use background_worker::{CronError, Schedule};
    ///
    /// let report = Schedule::cron_in("0 30 6 * * MON-FRI", "Europe/Berlin").unwrap();
    /// assert_eq!(
    ///     Schedule::cron_in("0 2 * * *", "Europe/Atlantis").unwrap_err(),
    ///     CronError::UnknownTimeZone { zone: "Europe/Atlantis".into() }
    /// );
    /// # drop(report);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`cron`](Self::cron), and [`CronError::UnknownTimeZone`] for a zone `chrono-tz` does
    /// not know.
    #[cfg(feature = "cron")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cron")))]
    pub fn cron_in(expression: &str, zone: &str) -> Result<Self, CronError> {
        super::cron::CronCadence::parse(expression, zone)
            .map(|cron| Self::with_cadence(CadenceSpec::Cron(Box::new(cron))))
    }

    fn with_cadence(cadence: CadenceSpec) -> Self {
        Self {
            cadence,
            overlap: Overlap::default(),
            missed: Missed::default(),
            jitter: Duration::ZERO,
            timeout: None,
        }
    }

    /// What to do with a tick while the previous run is pending or running. Default:
    /// [`Overlap::Skip`].
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// What to do with ticks missed during a pause or a stall. Default: [`Missed::RunLatest`].
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// Delays each run by up to `bound` (whole milliseconds) after its tick, to spread the load
    /// of many schedules on the same tick. The delay is not random: it is a hash of the
    /// schedule's name and the tick's time, so every process computes the same delay for the
    /// same tick. The run's id and [`Tick::scheduled_at`](crate::Tick::scheduled_at) keep the
    /// tick's own time. Default: no jitter.
    ///
    /// Keep it well under the period: a run whose delay takes it past the next tick's own start
    /// counts that tick as missed.
    pub fn jitter(mut self, bound: Duration) -> Self {
        self.jitter = bound;
        self
    }

    /// Bounds each run: a body still running `timeout` after it started is dropped at its next
    /// `.await` and the run ends as [`TaskStatus::Failed`](crate::TaskStatus::Failed) with the
    /// message `timed out after <timeout>` (Failed, not Cancelled: nobody asked it to stop,
    /// it overran). The time waiting for a concurrency permit does not count. Default: none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}
