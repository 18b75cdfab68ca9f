//! What the console's handlers share: the worker, its [`JobIndex`] and, with the `redis`
//! feature, its mirror; and how a job and a local page look from them.
//!
//! [`Console`](super::Console) (the handle, in `router.rs`) owns one [`Shared`] and its routes
//! hand it to the helpers (`cluster.rs`, `events.rs`), which take it instead of the handle, so
//! that imports run one way: `router` → `cluster`/`events` → `shared`.

use super::error::ApiError;
use super::index::JobIndex;
use super::json::{JobPage, JobView};
use super::paging::{self, ListQuery};
use crate::info::TaskInfo;
use crate::worker::Worker;

/// The state behind a [`Console`](super::Console) that its handlers read.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) worker: Worker,
    pub(crate) index: Option<JobIndex>,
    #[cfg(feature = "redis")]
    pub(crate) mirror: Option<crate::redis::RedisMirror>,
}

impl Shared {
    /// The state of a console over `worker`, without an index or a mirror.
    pub(crate) fn new(worker: Worker) -> Self {
        Self {
            worker,
            index: None,
            #[cfg(feature = "redis")]
            mirror: None,
        }
    }

    /// A local job as this console shows it (with its replica when there is a mirror).
    pub(crate) fn view(&self, info: TaskInfo) -> JobView {
        #[cfg(feature = "redis")]
        if let Some(mirror) = &self.mirror {
            return JobView::from(mirror.local_job(info));
        }
        JobView::from(info)
    }

    /// One page of this replica's jobs: from the index when there is one, else from a sorted
    /// snapshot of every job.
    pub(crate) fn local_page(&self, query: &ListQuery) -> Result<JobPage, ApiError> {
        match &self.index {
            Some(index) => paging::local_page(&self.worker, index, query),
            None => paging::snapshot_page(&self.worker, query),
        }
    }
}
