//! The cluster view (feature `redis`): pages, lookups and cancels through a [`RedisMirror`],
//! this replica's own jobs answered from its worker.

use std::time::Duration;

use axum::http::StatusCode;

use super::error::ApiError;
use super::json::{JobPage, JobView};
use super::paging::{invalid_cursor, ListQuery, SCAN_BUDGET};
use super::shared::Shared;
use crate::redis::{ClusterError, ClusterJob, PageCursor, RedisMirror};

/// The bound on one cluster page before it falls back to this replica's jobs.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// A job of this replica as the mirror shows it, fresh from the worker when the worker still has
/// that submission.
fn fresh(shared: &Shared, mirror: &RedisMirror, job: ClusterJob) -> JobView {
    if job.replica == mirror.replica() {
        if let Some(info) = shared.worker.task_info(&job.id) {
            if info.generation == job.generation {
                return JobView::from(mirror.local_job(info));
            }
        }
    }
    JobView::from(job)
}

/// One page across the cluster, newest first as the mirror lists it.
pub(crate) async fn page(
    shared: &Shared,
    mirror: &RedisMirror,
    query: &ListQuery,
) -> Result<JobPage, ApiError> {
    let mut after = match &query.cursor {
        None => None,
        Some(cursor) => Some(cursor.parse::<PageCursor>().map_err(|_| invalid_cursor())?),
    };
    let listing = tokio::time::timeout(LIST_TIMEOUT, async {
        let mut jobs = Vec::with_capacity(query.limit);
        let mut looked = 0;
        // Each request asks for no more than the page still needs, so the mirror's own cursor
        // is always exactly where this page ends.
        loop {
            let want = query.limit - jobs.len();
            let page = mirror.jobs_newest_first(after.as_ref(), want).await?;
            for job in page.jobs {
                looked += 1;
                let view = fresh(shared, mirror, job);
                let wanted = query.status.is_none_or(|status| status == view.status)
                    && query
                        .replica
                        .as_deref()
                        .is_none_or(|replica| Some(replica) == view.replica.as_deref());
                if wanted {
                    jobs.push(view);
                }
            }
            match page.next {
                None => return Ok::<_, ClusterError>((jobs, None)),
                Some(cursor) if jobs.len() == query.limit || looked >= SCAN_BUDGET => {
                    return Ok((jobs, Some(cursor.to_string())))
                }
                Some(cursor) => after = Some(cursor),
            }
        }
    })
    .await;
    let cause = match listing {
        Ok(Ok((jobs, next))) => {
            let mut page = JobPage::new(jobs, next);
            page.cluster = Some(true);
            return Ok(page);
        }
        Ok(Err(_)) if query.cursor.is_some() => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the cluster view is unavailable; retry, or list from the first page",
            ))
        }
        Ok(Err(cause)) => cause.to_string(),
        Err(_) => format!("redis did not answer within {LIST_TIMEOUT:?}"),
    };
    tracing::warn!(%cause, "cluster listing unavailable, answering this replica's jobs");
    let mut local = ListQuery {
        cursor: None,
        ..query.clone()
    };
    if local.replica.as_deref() == Some(mirror.replica()) {
        local.replica = None;
    }
    let mut page = shared.local_page(&local)?;
    for job in &mut page.jobs {
        job.replica = Some(mirror.replica().to_owned());
    }
    page.cluster = Some(false);
    page.error = Some(cause);
    Ok(page)
}
