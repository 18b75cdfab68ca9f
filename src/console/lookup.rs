//! Which submission of an id the console answers for.
//!
//! One id may have been submitted more than once across the cluster (a claimed id is granted
//! again once its job is terminal, to any replica). This worker keeps its own finished
//! submission for its retention time, while Redis holds the newest record of the id. The
//! rule: a live local job is the answer (it is the newest: a live id is never granted again);
//! a finished local job is the answer unless the mirror holds a later submission of the same
//! id from another run (then that one is); while Redis does not answer, the local job is.

use super::error::ApiError;
use super::json::JobView;
use super::Console;

impl Console {
    /// The job `id` as `GET /jobs/{id}` shows it: `Ok(None)` when no replica has it, an
    /// `ApiError` (`503`) when only Redis could know and it does not answer.
    pub(crate) async fn lookup(&self, id: &str) -> Result<Option<JobView>, ApiError> {
        let local = self.shared.worker.task_info(id);
        #[cfg(feature = "redis")]
        if let Some(mirror) = &self.shared.mirror {
            match local {
                Some(info) if !info.status.is_terminal() => return Ok(Some(self.shared.view(info))),
                Some(info) => {
                    return Ok(Some(match mirror.job(id).await {
                        Ok(Some(job)) if is_later(&job, mirror.replica(), &info) => JobView::from(job),
                        _ => self.shared.view(info),
                    }))
                }
                None => {
                    return match mirror.job(id).await {
                        Ok(job) => Ok(job.map(JobView::from)),
                        Err(cause) => Err(super::router::unavailable(&cause)),
                    }
                }
            }
        }
        Ok(local.map(|info| self.shared.view(info)))
    }

    /// Whether `DELETE /jobs/{id}` cancels through this worker: it has a job of that id, and
    /// without a mirror that is the only one; with a mirror, only while it is live (a finished
    /// local job may have a later submission elsewhere, which the mirror finds).
    pub(crate) fn cancels_locally(&self, id: &str) -> bool {
        #[cfg(feature = "redis")]
        if self.shared.mirror.is_some() {
            return self
                .shared
                .worker
                .task_info(id)
                .is_some_and(|info| !info.status.is_terminal());
        }
        self.shared.worker.has_task(id)
    }
}

/// Whether the mirror's record `job` is a later submission than this replica's finished `local`
/// one: another replica's or another generation's, submitted no earlier.
#[cfg(feature = "redis")]
fn is_later(job: &crate::redis::ClusterJob, replica: &str, local: &crate::info::TaskInfo) -> bool {
    let same = job.replica == replica && job.generation == local.generation;
    !same && job.submitted_at >= local.submitted_at
}
