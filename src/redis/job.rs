//! [`ClusterJob`] and [`ClusterStatus`]: a job as the cluster sees it, read from its record.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::progress::Progress;
use crate::redis::error::ClusterError;
use crate::status::TaskStatus;

/// Where a job is in its life, as the cluster sees it: a [`TaskStatus`] plus `Lost`.
///
/// # Examples
///
/// ```
/// use background_worker::{ClusterStatus, TaskStatus};
///
/// assert_eq!(ClusterStatus::from(TaskStatus::Running).name(), "running");
/// assert!(ClusterStatus::Lost.is_terminal());
/// assert_eq!(ClusterStatus::Failed("disk full".into()).to_string(), "failed: disk full");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "status", content = "message", rename_all = "snake_case")
)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub enum ClusterStatus {
    /// Accepted by its replica, waiting to start.
    Pending,
    /// Its body is running on its replica.
    Running,
    /// It returned `Ok(())`.
    Completed,
    /// It returned an error or panicked, with the message.
    Failed(String),
    /// It was cancelled (by a cancel from any replica, or by its replica's shutdown).
    Cancelled,
    /// It was pending or running when its replica's lease expired: the replica died, or lost
    /// Redis for longer than its lease. Its real end is unknown.
    Lost,
}

impl ClusterStatus {
    /// `true` for every status that will not change any more on its own: `Completed`,
    /// `Failed`, `Cancelled` and `Lost`.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// The variant's name in lowercase (`"pending"`, ..., `"lost"`), without the message.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed(_) => "failed",
            Self::Cancelled => "cancelled",
            Self::Lost => "lost",
        }
    }

    /// The record's stage: 0 pending, 1 running, 2 lost, 3 terminal (see `scripts.rs`).
    pub(crate) fn stage(&self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Running => 1,
            Self::Lost => 2,
            Self::Completed | Self::Failed(_) | Self::Cancelled => 3,
        }
    }
}

impl From<TaskStatus> for ClusterStatus {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Pending => Self::Pending,
            TaskStatus::Running => Self::Running,
            TaskStatus::Completed => Self::Completed,
            TaskStatus::Failed(message) => Self::Failed(message),
            TaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(message) => write!(f, "failed: {message}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One job as the cluster sees it, from [`RedisMirror::job`](crate::RedisMirror::job) or
/// [`RedisMirror::jobs`](crate::RedisMirror::jobs): its status, which replica runs it, and
/// the times and progress that replica mirrored.
///
/// Times are the owning replica's wall clock, except `updated_at` (Redis's clock). Progress is
/// mirrored at a bounded rate (see
/// [`MirrorBuilder::progress_interval`](crate::MirrorBuilder::progress_interval)), so it may be
/// a little behind the owner's own [`TaskInfo`](crate::TaskInfo).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[non_exhaustive]
pub struct ClusterJob {
    /// The job's id.
    pub id: String,
    /// Its status; `Lost` when it was unfinished and its replica's lease is gone.
    pub status: ClusterStatus,
    /// The name of the replica that accepted it.
    pub replica: String,
    /// The submission's generation on that replica ([`TaskInfo::generation`](crate::TaskInfo::generation)).
    pub generation: u64,
    /// When it was submitted.
    pub submitted_at: SystemTime,
    /// When its body started, if it did.
    pub started_at: Option<SystemTime>,
    /// When it reached its terminal status (or was found lost), if it did.
    pub finished_at: Option<SystemTime>,
    /// When its record was last written (Redis's clock).
    pub updated_at: SystemTime,
    /// The latest progress mirrored, if any.
    pub progress: Option<Progress>,
    /// The fencing token of a claimed submission
    /// ([`RedisMirror::submit`](crate::RedisMirror::submit)); `None` for a plain one.
    pub fencing_token: Option<u64>,
    /// The owner's run (its incarnation token), to check its lease.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) incarnation: String,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl ClusterJob {
    /// Parses a record (the fields of `HGETALL`). `Ok(None)` for an empty record (none there)
    /// or one that holds another id (a hash collision: never another job's record).
    pub(crate) fn parse(id: &str, fields: HashMap<String, Vec<u8>>) -> Result<Option<Self>, ClusterError> {
        if fields.is_empty() {
            return Ok(None);
        }
        let malformed = |reason: String| ClusterError::Malformed {
            id: id.to_owned(),
            reason,
        };
        let text = |name: &str| -> Result<Option<String>, ClusterError> {
            match fields.get(name) {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes.clone())
                    .map(Some)
                    .map_err(|_| malformed(format!("field {name:?} is not UTF-8"))),
            }
        };
        let required = |name: &str| -> Result<String, ClusterError> {
            text(name)?.ok_or_else(|| malformed(format!("field {name:?} is missing")))
        };
        let number = |name: &str| -> Result<Option<u64>, ClusterError> {
            text(name)?
                .map(|value| {
                    value
                        .parse::<u64>()
                        .map_err(|_| malformed(format!("field {name:?} is not a number: {value:?}")))
                })
                .transpose()
        };
        if required("id")? != id {
            return Ok(None);
        }
        let status = match required("st")?.as_str() {
            "pending" => ClusterStatus::Pending,
            "running" => ClusterStatus::Running,
            "completed" => ClusterStatus::Completed,
            "failed" => ClusterStatus::Failed(text("msg")?.unwrap_or_default()),
            "cancelled" => ClusterStatus::Cancelled,
            "lost" => ClusterStatus::Lost,
            other => return Err(malformed(format!("unknown status {other:?}"))),
        };
        let fraction = text("pf")?
            .map(|value| {
                value
                    .parse::<f64>()
                    .map_err(|_| malformed(format!("progress fraction is not a number: {value:?}")))
            })
            .transpose()?;
        let done = number("pd")?;
        let total = number("pt")?;
        let message = text("pm")?;
        let progress = (fraction.is_some() || done.is_some() || total.is_some() || message.is_some())
            .then_some(Progress {
                fraction,
                done,
                total,
                message,
            });
        let missing = |name: &str| malformed(format!("field {name:?} is missing"));
        Ok(Some(Self {
            id: id.to_owned(),
            status,
            replica: required("rep")?,
            incarnation: required("inc")?,
            generation: number("gen")?.ok_or_else(|| missing("gen"))?,
            submitted_at: from_ms(number("sub")?.ok_or_else(|| missing("sub"))?),
            started_at: number("start")?.map(from_ms),
            finished_at: number("end")?.map(from_ms),
            updated_at: from_ms(number("upd")?.ok_or_else(|| missing("upd"))?),
            progress,
            fencing_token: number("tok")?,
        }))
    }

    /// The same job, reported lost because its replica's lease is gone.
    pub(crate) fn lost(mut self) -> Self {
        if !self.status.is_terminal() {
            self.status = ClusterStatus::Lost;
        }
        self
    }
}
