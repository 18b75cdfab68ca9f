//! What a slot reports: the progress a context task's body sets, and snapshots of its times
//! for `task_info` and for observers' transitions.

use std::time::{Duration, SystemTime};

use crate::sync::tokio::time::Instant;

use crate::info::TaskInfo;
use crate::progress::Progress;

use super::layout::Slot;
use super::transition::Snapshot;

impl Slot {
    /// Reports progress; ignored once the task is terminal, and for tasks from `submit`.
    pub(crate) fn set_progress(&self, progress: Progress) {
        let mut inner = self.lock();
        if self.context && !self.is_terminal() {
            inner.extra().progress = Some(progress);
        }
    }

    /// A snapshot for `task_info` and `tasks`.
    pub(crate) fn info(&self, now: Instant) -> TaskInfo {
        let inner = self.lock();
        let index = self.status_index();
        let status = self.status_from(index, || inner.message());
        let (started, finished) = (self.instant(inner.started), self.instant(inner.finished));
        let queued_until = started.or(finished).unwrap_or(now);
        TaskInfo {
            id: self.id().to_owned(),
            generation: self.generation,
            status,
            submitted_at: self.wall(self.submitted),
            started_at: started.map(|at| self.wall(at)),
            finished_at: finished.map(|at| self.wall(at)),
            queued: queued_until.saturating_duration_since(self.submitted),
            run_time: started.map(|at| finished.unwrap_or(now).saturating_duration_since(at)),
            progress: inner.extra.as_ref().and_then(|extra| extra.progress.clone()),
        }
    }

    /// The parts of a [`Transition`](crate::Transition) for a snapshot of this slot.
    ///
    /// Worked out from durations (one clock subtraction per duration, one wall-clock addition),
    /// as this runs for every transition when observers listen.
    pub(crate) fn transition_times(&self, snapshot: &Snapshot) -> TransitionTimes {
        let since = |later: Option<Instant>, earlier: Instant| {
            later.map_or(Duration::ZERO, |later| later.saturating_duration_since(earlier))
        };
        let (queued, run_time) = match (snapshot.stage, snapshot.started) {
            (1, _) => (None, None),
            (2, started) => (Some(since(started, self.submitted)), None),
            (_, Some(started)) => (
                Some(started.saturating_duration_since(self.submitted)),
                Some(since(snapshot.finished, started)),
            ),
            (_, None) => (Some(since(snapshot.finished, self.submitted)), None),
        };
        let elapsed = queued.unwrap_or_default() + run_time.unwrap_or_default();
        TransitionTimes {
            at: self.submitted_wall + elapsed,
            submitted_at: self.submitted_wall,
            queued,
            run_time,
        }
    }
}

/// The times of one transition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransitionTimes {
    pub(crate) at: SystemTime,
    pub(crate) submitted_at: SystemTime,
    pub(crate) queued: Option<Duration>,
    pub(crate) run_time: Option<Duration>,
}
