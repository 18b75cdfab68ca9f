//! Claimed submissions: [`RedisMirror::submit`] and [`RedisMirror::submit_with_context`], the
//! handle's side of `claim.rs`. The order that makes them safe: local checks, the lease, one
//! claim script, then the spawn; a spawn the worker refuses takes its claim back.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use crate::context::TaskContext;
use crate::error::SubmitError;
use crate::redis::claim::{claim, unclaim, Claimed, Submission};
use crate::redis::error::ClaimError;
use crate::redis::job::unix_ms;
use crate::redis::keys::digest;
use crate::redis::lease::renew;
use crate::redis::mirror::{Inner, RedisMirror};
use crate::redis::token::FencingToken;

impl RedisMirror {
    /// Runs `work` as the task `id` on this replica's worker, after claiming `id` for the whole
    /// namespace: while this job is pending or running, a claimed submission of the same id on
    /// any replica is refused with [`ClaimError::Held`], naming this replica. The body gets the
    /// submission's [`FencingToken`].
    ///
    /// The claim is one atomic script in Redis, made before the task is spawned; it is the
    /// job's record itself, written `pending`. It is held by this replica run's lease, never by
    /// a TTL of its own: it lasts while the job is pending or running and the run is alive, and
    /// ends when the job is terminal, or when the run dies (the job then reads
    /// [`Lost`](crate::ClusterStatus::Lost)). Once the job is terminal or lost, the id can be
    /// claimed again (a re-submission, with a greater token).
    ///
    /// Exclusivity holds among claimed submissions. A plain [`Worker::submit`](crate::Worker::submit)
    /// of the same id still follows only the local rule (no Redis on its path): a claim
    /// refuses it once the mirror has written it, and the local registry refuses it on the
    /// claiming replica itself; the fence keeps its writes from replacing a live claim's record.
    ///
    /// While Redis cannot be reached, the claim fails within the
    /// [query timeout](crate::MirrorBuilder::query_timeout) (2 s by default) with
    /// [`ClaimError::Unavailable`], and the task does not run: never silently local.
    ///
    /// # Examples
    ///
    /// Fencing a database write: the row is updated only by a token newer than the one that
    /// wrote it last, so a replica that paused past its lease and wakes up after another one
    /// claimed the id cannot overwrite the newer result.
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::{ClaimError, ClusterStatus, RedisMirror, Worker};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // Runs against the test suite's redis-server (`.ci/run` starts one); skipped without it.
    /// # let Ok(port) = std::env::var("BACKGROUND_WORKER_REDIS_PORT") else { return Ok(()) };
    /// # let url = format!("redis://127.0.0.1:{port}");
    /// # let namespace = format!("doc-claims-{}", std::process::id());
    /// let mirror = RedisMirror::builder(url.as_str())
    ///     .namespace(namespace.as_str())
    ///     .replica("web-1")
    ///     .lease(Duration::from_secs(1))
    ///     .build()?;
    /// let worker = Worker::builder().observer(mirror.observer()).build();
    /// mirror.start(&worker)?;
    ///
    /// // UPDATE reports SET body = $1, token = $2 WHERE id = $3 AND token < $2
    /// let claimed = loop {
    ///     let claim = mirror.submit("daily-report-2026-12-06", |token| async move {
    ///         let _ = token.get(); // written beside the row, compared by the database
    ///         tokio::time::sleep(Duration::from_millis(300)).await;
    ///         Ok(())
    ///     });
    ///     match claim.await {
    ///         // A fresh namespace (or a Redis that forgot): wait out one lease.
    ///         Err(ClaimError::NotKnownYet { retry_after, .. }) => tokio::time::sleep(retry_after).await,
    ///         other => break other,
    ///     }
    /// };
    /// let token = claimed?;
    ///
    /// // Another replica's claim of the same id is refused while it runs (on this replica,
    /// // the local rule refuses it first: `ClaimError::Submit(SubmitError::DuplicateId)`).
    /// let mirror2 = RedisMirror::builder(url.as_str())
    ///     .namespace(namespace.as_str())
    ///     .replica("web-2")
    ///     .lease(Duration::from_secs(1))
    ///     .build()?;
    /// let worker2 = Worker::builder().observer(mirror2.observer()).build();
    /// mirror2.start(&worker2)?;
    /// let again = mirror2.submit("daily-report-2026-12-06", |_| async { Ok(()) }).await;
    /// assert!(matches!(again, Err(ClaimError::Held { ref replica, .. }) if replica == "web-1"));
    ///
    /// worker.wait("daily-report-2026-12-06").await;
    /// # let mut job = None;
    /// # for _ in 0..100 {
    /// #     job = mirror.job("daily-report-2026-12-06").await?;
    /// #     if job.as_ref().is_some_and(|job| job.status.is_terminal()) { break }
    /// #     tokio::time::sleep(Duration::from_millis(50)).await;
    /// # }
    /// let job = job.expect("mirrored");
    /// assert_eq!(job.status, ClusterStatus::Completed);
    /// assert_eq!(job.fencing_token, Some(token.get()));
    ///
    /// // Terminal: the id can be claimed again, with a greater token.
    /// let next = mirror.submit("daily-report-2026-12-06", |_| async { Ok(()) }).await?;
    /// assert!(next > token);
    /// # worker.wait("daily-report-2026-12-06").await;
    /// worker.shutdown().await;
    /// mirror.close(Duration::from_secs(5)).await?;
    /// # worker2.shutdown().await;
    /// # mirror2.close(Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The closure is dropped without being called, and nothing runs, when:
    /// - a job with this id is pending or running on a live run of any replica:
    ///   [`ClaimError::Held`];
    /// - Redis cannot be reached within the query timeout: [`ClaimError::Unavailable`];
    /// - Redis began serving its data less than a lease ago (a restart, a flush, a failover,
    ///   the namespace's first use) and the id is not held: [`ClaimError::NotKnownYet`] (ask
    ///   again after its `retry_after`);
    /// - the local worker refuses it (an empty id, a live local task of this id, a shutdown,
    ///   the capacity): [`ClaimError::Submit`], and the claim is taken back;
    /// - this replica's run was found dead meanwhile: [`ClaimError::Refused`];
    /// - [`start`](RedisMirror::start) was not called: [`ClaimError::NotStarted`].
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime (as [`tokio::spawn`] does).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a future dropped while the claim script runs may leave a claim that
    /// Redis took without a task; the next re-sync finds it and marks it `lost` (which frees
    /// the id). A future dropped before its first poll claims nothing.
    pub async fn submit<F, Fut>(&self, id: impl Into<String>, work: F) -> Result<FencingToken, ClaimError>
    where
        F: FnOnce(FencingToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.inner
            .claimed(id.into(), false, false, move |_, token| work(token))
            .await
    }

    /// [`submit`](RedisMirror::submit) for a body that also takes its [`TaskContext`] (its
    /// cancellation token and progress), as [`Worker::submit_with_context`](crate::Worker::submit_with_context).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::{ClaimError, RedisMirror, Worker};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let Ok(port) = std::env::var("BACKGROUND_WORKER_REDIS_PORT") else { return Ok(()) };
    /// # let url = format!("redis://127.0.0.1:{port}");
    /// # let namespace = format!("doc-claims-ctx-{}", std::process::id());
    /// let mirror = RedisMirror::builder(url.as_str())
    ///     .namespace(namespace.as_str())
    ///     .replica("web-1")
    ///     .lease(Duration::from_secs(1))
    ///     .build()?;
    /// let worker = Worker::builder().observer(mirror.observer()).build();
    /// mirror.start(&worker)?;
    ///
    /// loop {
    ///     let claim = mirror.submit_with_context("user-sync-42", |ctx, token| async move {
    ///         tracing::info!(%token, "syncing");
    ///         ctx.cancelled().await;
    ///         Ok(())
    ///     });
    ///     match claim.await {
    ///         Err(ClaimError::NotKnownYet { retry_after, .. }) => tokio::time::sleep(retry_after).await,
    ///         other => {
    ///             other?;
    ///             break;
    ///         }
    ///     }
    /// }
    /// worker.cancel("user-sync-42").await?;
    /// worker.shutdown().await;
    /// mirror.close(Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`submit`](RedisMirror::submit).
    ///
    /// # Panics
    ///
    /// As for [`submit`](RedisMirror::submit).
    ///
    /// # Cancel safety
    ///
    /// As for [`submit`](RedisMirror::submit).
    pub async fn submit_with_context<F, Fut>(
        &self,
        id: impl Into<String>,
        work: F,
    ) -> Result<FencingToken, ClaimError>
    where
        F: FnOnce(TaskContext, FencingToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.inner
            .claimed(id.into(), true, false, move |ctx, token| {
                work(ctx.expect("a context submission has a context"), token)
            })
            .await
    }
}

impl Inner {
    /// The claimed submission behind `submit`, `submit_with_context` and the schedules' ticks
    /// (`ticks.rs`); `once` claims the id only if Redis holds no record of it at all.
    pub(crate) async fn claimed<F, Fut>(
        &self,
        id: String,
        with_context: bool,
        once: bool,
        work: F,
    ) -> Result<FencingToken, ClaimError>
    where
        F: FnOnce(Option<TaskContext>, FencingToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let running = self.running().map_err(|_| ClaimError::NotStarted)?;
        let shared = &self.shared;
        let worker = &running.worker;
        let conn = &running.conn;
        // What the worker would refuse anyway is refused without asking Redis.
        if id.is_empty() {
            return Err(SubmitError::InvalidId { id }.into());
        }
        if worker.is_shutting_down() {
            return Err(SubmitError::ShuttingDown { id }.into());
        }
        if worker
            .task_info(&id)
            .is_some_and(|info| !info.status.is_terminal())
        {
            return Err(SubmitError::DuplicateId { id }.into());
        }
        let member = digest(&id);
        let timeout = shared.settings.query_timeout;
        let unavailable = |reason: String| ClaimError::Unavailable {
            id: id.clone(),
            reason,
        };
        let mut sent = false;
        let attempt = tokio::time::timeout(timeout, async {
            // A record must not reach Redis before its run holds its lease (the script would
            // find the run dead), as for the writer.
            let run = shared.current_run();
            let held = (run.ever_held.load(Ordering::Acquire) && shared.link.health.lease_fresh())
                || renew(shared, worker, conn).await;
            let run = shared.current_run();
            if !held {
                return Ok(None);
            }
            // Taken now, so that it is above every generation this run's observer saw.
            let generation = worker.next_generation();
            let submission = Submission {
                id: &id,
                member: &member,
                generation,
                submitted_ms: unix_ms(SystemTime::now()),
                once,
            };
            sent = true;
            claim(shared, conn, &run, &submission)
                .await
                .map(|claimed| Some((run, generation, claimed)))
        })
        .await;
        let (run, generation, claimed) = match attempt {
            Ok(Ok(Some(claimed))) => claimed,
            Ok(Ok(None)) => return Err(unavailable("this replica does not hold its lease".to_owned())),
            Ok(Err(error)) if error.kind() == redis::ErrorKind::UnexpectedReturnType => {
                return Err(ClaimError::Refused {
                    id: id.clone(),
                    reason: error.to_string(),
                })
            }
            Ok(Err(error)) => {
                self.orphan(sent);
                return Err(unavailable(error.to_string()));
            }
            Err(_) => {
                self.orphan(sent);
                return Err(unavailable(format!("redis did not answer within {timeout:?}")));
            }
        };
        let token = match claimed {
            Claimed::Token(token) => token,
            Claimed::Held { replica, token } => {
                return Err(ClaimError::Held {
                    id,
                    replica,
                    fencing_token: token,
                })
            }
            Claimed::NotKnownYet(retry_after) => return Err(ClaimError::NotKnownYet { id, retry_after }),
            Claimed::Collision => {
                return Err(ClaimError::Refused {
                    id,
                    reason: "the record under its key holds another id".to_owned(),
                })
            }
            Claimed::RunDead => {
                return Err(ClaimError::Refused {
                    id,
                    reason: "this replica's run was found dead; a new one begins".to_owned(),
                })
            }
        };
        let submission = Submission {
            id: &id,
            member: &member,
            generation,
            submitted_ms: 0,
            once,
        };
        // The run may have been found dead between the claim and now: its claims read `lost`.
        if !shared
            .run_of(generation)
            .is_some_and(|current| Arc::ptr_eq(&current, &run))
        {
            return Err(ClaimError::Refused {
                id,
                reason: "this replica's run was found dead; a new one begins".to_owned(),
            });
        }
        shared.note_claim(&id, generation, token);
        let fencing = FencingToken::new(token);
        match worker.submit_as(id.clone(), generation, with_context, move |ctx| {
            work(ctx, fencing)
        }) {
            Ok(()) => {
                shared.spawned_claim(&id, generation);
                Ok(fencing)
            }
            Err(refused) => {
                shared.forget_claim(&id, generation);
                let taken_back =
                    tokio::time::timeout(timeout, unclaim(shared, conn, &run, &submission, token)).await;
                if !matches!(taken_back, Ok(Ok(_))) {
                    self.orphan(true);
                }
                Err(refused.into())
            }
        }
    }

    /// A claim may have been taken in Redis without a task here (its answer was lost): the
    /// next re-sync marks this run's records without a task `lost`, which frees the id.
    fn orphan(&self, sent: bool) {
        if sent {
            self.shared.link.request_resync();
        }
    }
}
