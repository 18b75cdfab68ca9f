//! The cluster's view of jobs through the handle: one job by id, and pages of the listing in
//! either order. Each call is bounded by the query timeout (`RedisMirror::bounded`).

use crate::redis::error::ClusterError;
use crate::redis::job::ClusterJob;
use crate::redis::mirror::RedisMirror;
use crate::redis::page::{Page, PageCursor};
use crate::redis::query;

impl RedisMirror {
    /// The job `id` as the cluster sees it, whichever replica runs it; `None` if no replica
    /// has it (never submitted, or its record expired).
    ///
    /// An unfinished job whose replica's lease has expired is returned as
    /// [`Lost`](crate::ClusterStatus::Lost).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Redis`] or [`ClusterError::Timeout`] when Redis cannot answer within the
    /// [query timeout](crate::MirrorBuilder::query_timeout) (a connection that broke is retried);
    /// [`ClusterError::Malformed`] for a record this crate did not write;
    /// [`ClusterError::NotStarted`] before [`start`](RedisMirror::start).
    ///
    /// # Cancel safety
    ///
    /// Only reads; cancel safe.
    pub async fn job(&self, id: &str) -> Result<Option<ClusterJob>, ClusterError> {
        let running = self.inner.running()?;
        self.bounded(query::job(&self.inner.shared, running.conn.clone(), id))
            .await
    }

    /// One page of the namespace's jobs, oldest submission first: up to `limit` (clamped to
    /// 1..=1000) after `after` (`None` for the first page). Follow [`Page::next`] for the rest.
    /// For the newest jobs first, as the console lists them, see
    /// [`jobs_newest_first`](RedisMirror::jobs_newest_first).
    /// Statuses are as in [`job`](RedisMirror::job).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn all(mirror: &background_worker::RedisMirror) -> Result<(), background_worker::ClusterError> {
    /// let mut after = None;
    /// loop {
    ///     let page = mirror.jobs(after.as_ref(), 500).await?;
    ///     for job in &page.jobs {
    ///         println!("{} {} on {}", job.id, job.status, job.replica);
    ///     }
    ///     match page.next {
    ///         Some(next) => after = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`job`](RedisMirror::job).
    ///
    /// # Cancel safety
    ///
    /// Only reads; cancel safe.
    pub async fn jobs(&self, after: Option<&PageCursor>, limit: usize) -> Result<Page, ClusterError> {
        let running = self.inner.running()?;
        self.bounded(query::page(
            &self.inner.shared,
            running.conn.clone(),
            after,
            limit.clamp(1, 1000),
            false,
        ))
        .await
    }

    /// One page of the namespace's jobs, newest submission first: up to `limit` (clamped to
    /// 1..=1000) older than `after` (`None` for the first page, the newest jobs). Follow
    /// [`Page::next`] for the rest. Statuses are as in [`job`](RedisMirror::job).
    ///
    /// The order is by submission time (ms), then by the id's hash; a cursor is stable under
    /// inserts: jobs submitted while a client walks the pages are newer than its cursor, so they
    /// never shift a later page (they show on a new first page). This is the order of the
    /// console's `GET /jobs`. A cursor from [`jobs`](RedisMirror::jobs) (oldest first) is
    /// accepted too and means the same point in the index.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn newest(mirror: &background_worker::RedisMirror) -> Result<(), background_worker::ClusterError> {
    /// let page = mirror.jobs_newest_first(None, 10).await?;
    /// for job in &page.jobs {
    ///     println!("{} {} on {}", job.id, job.status, job.replica);
    /// }
    /// if let Some(next) = page.next {
    ///     let older = mirror.jobs_newest_first(Some(&next), 10).await?;
    ///     println!("then {} older jobs", older.jobs.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`job`](RedisMirror::job).
    ///
    /// # Cancel safety
    ///
    /// Only reads; cancel safe.
    pub async fn jobs_newest_first(
        &self,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> Result<Page, ClusterError> {
        let running = self.inner.running()?;
        self.bounded(query::page(
            &self.inner.shared,
            running.conn.clone(),
            after,
            limit.clamp(1, 1000),
            true,
        ))
        .await
    }
}
