//! The errors of schedules.

use std::time::Duration;

use thiserror::Error;

/// Why [`Worker::schedule`](crate::Worker::schedule) refused a schedule.
///
/// Whenever a schedule is refused, nothing is registered and its body is dropped unrun.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The name is not usable: it is empty, longer than
    /// [`MAX_SCHEDULE_NAME`](crate::MAX_SCHEDULE_NAME) bytes, or holds an `@` (which separates
    /// the name from the tick in a run's id) or a control character.
    #[error("invalid schedule name {name:?}: {reason}")]
    InvalidName {
        /// The name that was refused.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A schedule with this name exists on this worker; it was left untouched.
    #[error("a schedule named {name:?} already exists")]
    DuplicateName {
        /// The name of the existing schedule.
        name: String,
    },
    /// The period of [`Schedule::every`](crate::Schedule::every) is under one millisecond.
    #[error("invalid period {period:?} for schedule {name:?}: the period must be at least 1 ms")]
    InvalidPeriod {
        /// The schedule's name.
        name: String,
        /// The period that was refused.
        period: Duration,
    },
    /// [`Worker::shutdown`](crate::Worker::shutdown) has begun: no schedule is added any more.
    #[error("worker is shutting down, schedule {name:?} was not added")]
    ShuttingDown {
        /// The schedule's name.
        name: String,
    },
}

impl ScheduleError {
    /// The name of the schedule that was refused.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::InvalidName { name, .. }
            | Self::DuplicateName { name }
            | Self::InvalidPeriod { name, .. }
            | Self::ShuttingDown { name } => name,
        }
    }
}

/// Why [`Schedule::cron`](crate::Schedule::cron) or
/// [`Schedule::cron_in`](crate::Schedule::cron_in) refused an expression (feature `cron`).
#[cfg(feature = "cron")]
#[cfg_attr(docsrs, doc(cfg(feature = "cron")))]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CronError {
    /// The expression does not parse.
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidExpression {
        /// The expression that was refused.
        expression: String,
        /// What the parser found wrong, in its own words.
        reason: String,
    },
    /// The expression parses but matches no date from now on (`0 0 30 2 *`: February 30th).
    #[error("cron expression {expression:?} has no upcoming tick")]
    NoTicks {
        /// The expression that was refused.
        expression: String,
    },
    /// The time zone is not an IANA time zone name known to `chrono-tz`.
    #[error("unknown time zone {zone:?}")]
    UnknownTimeZone {
        /// The name that was refused.
        zone: String,
    },
}
