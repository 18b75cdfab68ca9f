//! [`Update`]: one submission's state on its way to Redis, made from a transition, a progress
//! sample or a registry snapshot; merged per submission while it waits (`queue.rs`).

use std::sync::Arc;

use crate::info::TaskInfo;
use crate::observe::Transition;
use crate::progress::Progress;
use crate::redis::job::{unix_ms, ClusterStatus};

/// The state of one submission to write. Each carries all it knows, so writes of the same
/// submission can be merged and replayed in any order: the fence in Redis keeps the latest.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    pub(crate) id: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) status: ClusterStatus,
    pub(crate) submitted_ms: u64,
    pub(crate) started_ms: Option<u64>,
    pub(crate) finished_ms: Option<u64>,
    /// `Some` to write the progress fields (replacing the stored ones).
    pub(crate) progress: Option<Progress>,
}

impl Update {
    pub(crate) fn from_transition(transition: &Transition<'_>) -> Self {
        let (status, started_ms, finished_ms) = Self::stage_of(transition);
        Self {
            id: Arc::from(transition.id),
            generation: transition.generation,
            status,
            submitted_ms: unix_ms(transition.submitted_at),
            started_ms,
            finished_ms,
            progress: None,
        }
    }

    /// Folds a later transition of the same submission into this update, as
    /// [`merge`](Update::merge) would with one made from it, without copying its id.
    pub(crate) fn absorb(&mut self, transition: &Transition<'_>) {
        let (status, started_ms, finished_ms) = Self::stage_of(transition);
        self.fold(status, started_ms, finished_ms, None);
    }

    /// The status, start and end a transition tells.
    fn stage_of(transition: &Transition<'_>) -> (ClusterStatus, Option<u64>, Option<u64>) {
        let status = ClusterStatus::from(transition.status.clone());
        let at = unix_ms(transition.at);
        let started_ms = match (&status, transition.run_time) {
            (ClusterStatus::Running, _) => Some(at),
            (_, Some(run_time)) => Some(unix_ms(transition.at - run_time)),
            _ => None,
        };
        let finished_ms = status.is_terminal().then_some(at);
        (status, started_ms, finished_ms)
    }

    /// From a snapshot of the registry (a re-sync, or a progress sample).
    pub(crate) fn from_info(info: TaskInfo) -> Self {
        Self {
            id: Arc::from(info.id),
            generation: info.generation,
            status: ClusterStatus::from(info.status),
            submitted_ms: unix_ms(info.submitted_at),
            started_ms: info.started_at.map(unix_ms),
            finished_ms: info.finished_at.map(unix_ms),
            progress: info.progress,
        }
    }

    /// Folds a later update of the same submission into this one.
    pub(crate) fn merge(&mut self, later: Self) {
        self.fold(later.status, later.started_ms, later.finished_ms, later.progress);
    }

    /// The one merge rule: a stage never goes back, and neither does the progress (a sample
    /// taken while the task ran, queued after its end, is not its final progress: the writer
    /// reads that from the registry).
    fn fold(
        &mut self,
        status: ClusterStatus,
        started_ms: Option<u64>,
        finished_ms: Option<u64>,
        progress: Option<Progress>,
    ) {
        if status.stage() >= self.status.stage() {
            self.status = status;
            self.finished_ms = finished_ms.or(self.finished_ms);
            if progress.is_some() {
                self.progress = progress;
            }
        }
        self.started_ms = self.started_ms.or(started_ms);
    }
}
