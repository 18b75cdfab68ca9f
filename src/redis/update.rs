//! [`Update`]: one submission's state on its way to Redis, made from a transition, a progress
//! sample or a registry snapshot; merged per submission within a batch.

use std::collections::HashMap;
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
        let status = ClusterStatus::from(transition.status.clone());
        let at = unix_ms(transition.at);
        let started_ms = match (&status, transition.run_time) {
            (ClusterStatus::Running, _) => Some(at),
            (_, Some(run_time)) => Some(unix_ms(transition.at - run_time)),
            _ => None,
        };
        Self {
            id: Arc::from(transition.id),
            generation: transition.generation,
            finished_ms: status.is_terminal().then_some(at),
            status,
            submitted_ms: unix_ms(transition.submitted_at),
            started_ms,
            progress: None,
        }
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
    fn merge(&mut self, later: Self) {
        if later.status.stage() >= self.status.stage() {
            self.status = later.status;
            self.finished_ms = later.finished_ms.or(self.finished_ms);
        }
        self.started_ms = self.started_ms.or(later.started_ms);
        if later.progress.is_some() {
            self.progress = later.progress;
        }
    }
}

/// Merges the updates of each submission (id and generation) in `batch` into one, in the
/// order each submission first appeared.
pub(crate) fn coalesce(batch: Vec<Update>) -> Vec<Update> {
    let mut out: Vec<Update> = Vec::with_capacity(batch.len());
    let mut slots: HashMap<(Arc<str>, u64), usize> = HashMap::with_capacity(batch.len());
    for update in batch {
        match slots.get(&(Arc::clone(&update.id), update.generation)) {
            Some(&slot) => out[slot].merge(update),
            None => {
                slots.insert((Arc::clone(&update.id), update.generation), out.len());
                out.push(update);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, generation: u64, status: ClusterStatus) -> Update {
        Update {
            id: Arc::from(id),
            generation,
            status,
            submitted_ms: 1,
            started_ms: None,
            finished_ms: None,
            progress: None,
        }
    }

    #[test]
    fn a_submission_is_merged_to_its_latest_stage() {
        let mut running = update("a", 1, ClusterStatus::Running);
        running.started_ms = Some(5);
        let merged = coalesce(vec![
            update("a", 1, ClusterStatus::Pending),
            update("b", 2, ClusterStatus::Pending),
            running,
            update("a", 3, ClusterStatus::Pending),
            update("a", 1, ClusterStatus::Completed),
        ]);
        let summary: Vec<_> = merged
            .iter()
            .map(|u| (&*u.id, u.generation, u.status.name(), u.started_ms))
            .collect();
        assert_eq!(
            summary,
            [
                ("a", 1, "completed", Some(5)),
                ("b", 2, "pending", None),
                ("a", 3, "pending", None)
            ]
        );
        // A late, earlier stage (a progress sample) does not move a merged state back.
        let mut late = coalesce(vec![
            update("a", 1, ClusterStatus::Completed),
            update("a", 1, ClusterStatus::Running),
        ]);
        assert_eq!(late.pop().map(|u| u.status), Some(ClusterStatus::Completed));
    }
}
