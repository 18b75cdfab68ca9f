//! When a task was submitted, started and finished, packed small: a registry keeps one of these
//! per entry, finished entries included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::observe::Transition;
use crate::status::TaskStatus;
use crate::sync::tokio::time::Instant;

/// An offset that is not set yet.
const UNSET: u64 = u64::MAX;

/// Submission time (monotonic and wall clock) and the start and finish as nanosecond offsets from
/// it: 40 bytes instead of 64 for four full timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    submitted: Instant,
    /// Wall-clock submission time, in nanoseconds since the Unix epoch.
    submitted_wall: u64,
    started: u64,
    finished: u64,
}

impl Times {
    pub(crate) fn now() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            submitted: Instant::now(),
            submitted_wall: nanos(since_epoch),
            started: UNSET,
            finished: UNSET,
        }
    }

    pub(crate) fn start(&mut self, at: Instant) {
        self.started = nanos(at.saturating_duration_since(self.submitted));
    }

    pub(crate) fn finish(&mut self, at: Instant) {
        self.finished = nanos(at.saturating_duration_since(self.submitted));
    }

    pub(crate) fn submitted(&self) -> Instant {
        self.submitted
    }

    pub(crate) fn started(&self) -> Option<Instant> {
        self.at(self.started)
    }

    pub(crate) fn finished(&self) -> Option<Instant> {
        self.at(self.finished)
    }

    /// The wall-clock time of an instant, anchored at submission.
    pub(crate) fn wall(&self, at: Instant) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.submitted_wall) + at.saturating_duration_since(self.submitted)
    }

    /// What an observer is told about the change to `status`.
    pub(crate) fn transition<'a>(
        &self,
        id: &'a str,
        generation: u64,
        status: &'a TaskStatus,
    ) -> Transition<'a> {
        let submitted = self.submitted;
        let (started, finished) = (self.started(), self.finished());
        let at = match status {
            TaskStatus::Pending => submitted,
            TaskStatus::Running => started.unwrap_or(submitted),
            _ => finished.unwrap_or(submitted),
        };
        let queued = (*status != TaskStatus::Pending).then(|| {
            started
                .or(finished)
                .unwrap_or(at)
                .saturating_duration_since(submitted)
        });
        let run_time = if status.is_terminal() {
            started.map(|started| at.saturating_duration_since(started))
        } else {
            None
        };
        Transition {
            id,
            generation,
            status,
            at: self.wall(at),
            submitted_at: self.wall(submitted),
            queued,
            run_time,
        }
    }

    fn at(&self, offset: u64) -> Option<Instant> {
        (offset != UNSET).then(|| self.submitted + Duration::from_nanos(offset))
    }
}

/// Nanoseconds, saturating just below the `UNSET` marker (that is 584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos())
        .unwrap_or(UNSET - 1)
        .min(UNSET - 1)
}
