//! [`RedisMirror`]: the handle. It owns the settings, the link to the observer and, once
//! started, the worker handle and the connection its background tasks share.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use crate::redis::conn::Conn;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::info::TaskInfo;
use crate::redis::error::ClusterError;
use crate::redis::health::MirrorHealth;
use crate::redis::job::{ClusterJob, ClusterStatus};
use crate::redis::keys::digest;
use crate::redis::observer::MirrorObserver;
use crate::redis::query::CancelRequest;
use crate::redis::settings::Settings;
use crate::redis::shared::{Link, Shared};
use crate::redis::{heartbeat, lease, listener, query, trimmer, writer};
use crate::schedule::TickClaimer;
use crate::worker::Worker;

/// How long a cancel request stays stored for its owner (a flag nobody read by then belonged
/// to a replica that is gone).
const CANCEL_FLAG_TTL: Duration = Duration::from_secs(3600);
/// How often [`RedisMirror::cancel`] looks at the job while it waits for its end.
const CANCEL_POLL: Duration = Duration::from_millis(25);

/// Mirrors a [`Worker`]'s tasks into Redis, so that every replica of a service can see, list
/// and cancel every replica's jobs, and jobs of a replica that died are reported
/// [`Lost`](crate::ClusterStatus::Lost) instead of running forever.
///
/// Redis is a mirror and a message path, never on the worker's hot path: the worker's own
/// `submit`, status queries, `cancel` and `shutdown` never wait for it and keep working while
/// it is slow or down. A [`MirrorObserver`] merges each transition into a bounded queue (one
/// entry per submission, its latest state); a
/// background writer sends them to Redis in pipelined batches, in order per task, through Lua
/// scripts that refuse stale writes; while Redis is unreachable they wait (and beyond the
/// bound, a re-sync from the registry replaces them). See the [module docs](crate#redis-mirror)
/// for the key layout and the rules.
///
/// `RedisMirror` is a cheap `Clone` around one `Arc`: every clone is the same mirror.
///
/// # Lifecycle
///
/// 1. [`RedisMirror::builder`] ... [`build`](crate::MirrorBuilder::build): check the settings.
/// 2. [`observer`](RedisMirror::observer) on the worker's builder, then build the worker.
/// 3. [`start`](RedisMirror::start) with the built worker: spawns the writer, the heartbeat
///    (lease, stored cancel requests, progress), the cancel listener and the trimmer.
/// 4. On SIGTERM: [`Worker::shutdown`], then [`close`](RedisMirror::close): the final
///    statuses are flushed and the lease is released, within a timeout.
///
/// # Dropping
///
/// The background tasks hold a clone and the worker handle; they run until
/// [`close`](RedisMirror::close) (or the runtime ends). Without `close`, the replica's lease
/// simply expires once the process is gone, and its unfinished jobs are reported lost.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use background_worker::{ClusterStatus, RedisMirror, Worker};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mirror = RedisMirror::builder("redis://127.0.0.1:6379")
///     .namespace("reports")
///     .replica("web-1")
///     .build()?;
/// let worker = Worker::builder().observer(mirror.observer()).build();
/// mirror.start(&worker)?;
///
/// worker.submit("report-42", || async { Ok(()) }).await?;
/// worker.wait("report-42").await;
///
/// // From any replica of the namespace:
/// let job = mirror.job("report-42").await?.expect("mirrored");
/// assert_eq!(job.replica, "web-1");
/// # let _ = job.status == ClusterStatus::Completed;
///
/// worker.shutdown().await;
/// mirror.close(Duration::from_secs(5)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisMirror {
    pub(crate) inner: Arc<Inner>,
}

/// The handle's state: what the background tasks share, and what only the handle uses.
pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    running: OnceLock<Running>,
}

/// What `start` adds.
pub(crate) struct Running {
    pub(crate) worker: Worker,
    pub(crate) conn: Conn,
    /// `true` once the writer flushed everything after `close` began.
    flushed: watch::Receiver<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for RedisMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("RedisMirror")
            .field("namespace", &inner.shared.settings.namespace)
            .field("replica", &inner.shared.settings.replica)
            .field("started", &inner.running.get().is_some())
            .field("queue_depth", &inner.shared.link.depth())
            .finish()
    }
}

impl Inner {
    pub(crate) fn running(&self) -> Result<&Running, ClusterError> {
        self.running.get().ok_or(ClusterError::NotStarted)
    }
}

impl RedisMirror {
    pub(crate) fn new(client: redis::Client, settings: Settings) -> Self {
        let link = Arc::new(Link::new(&settings));
        Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(client, settings, link)),
                running: OnceLock::new(),
            }),
        }
    }

    /// The observer to register on the worker with
    /// [`WorkerBuilder::observer`](crate::WorkerBuilder::observer). Every call returns a handle
    /// to the same queue: register it on one worker only.
    #[must_use]
    pub fn observer(&self) -> MirrorObserver {
        MirrorObserver {
            link: Arc::clone(&self.inner.shared.link),
        }
    }

    /// This replica's name.
    #[must_use]
    pub fn replica(&self) -> &str {
        &self.inner.shared.settings.replica
    }

    /// Every replica's status changes as published on `{ns}:events` (pub/sub, at most once):
    /// nothing while Redis is unreachable or before [`start`](RedisMirror::start), nor until
    /// the listener has subscribed (it does only while a receiver exists); a receiver more
    /// than 4 096 events behind skips. Only the console reads them.
    #[cfg(feature = "axum")]
    pub(crate) fn cluster_events(&self) -> tokio::sync::broadcast::Receiver<crate::redis::ClusterEvent> {
        let receiver = self.inner.shared.events.subscribe();
        self.inner.shared.events_wanted.notify_one();
        receiver
    }

    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.inner.shared.settings.namespace
    }

    /// The Redis key of the record of the job `id`: `{namespace}:job:<sha1 of id, hex>`. For
    /// operators (`HGETALL` it) and tests; the record's fields are listed in the
    /// [module docs](crate#redis-mirror).
    #[must_use]
    pub fn job_key(&self, id: &str) -> String {
        self.inner.shared.keys.job(&digest(id))
    }

    /// Starts mirroring `worker` (the one built with [`observer`](RedisMirror::observer)):
    /// spawns the writer, the heartbeat that holds the lease, reads stored cancel requests and
    /// samples progress, the cancel listener and the trimmer. It connects lazily and returns
    /// at once, whether Redis is up or not; [`health`](RedisMirror::health) tells.
    ///
    /// Transitions seen before `start` were queued (up to the queue's bound of submissions;
    /// beyond it, a re-sync covers them).
    ///
    /// # Errors
    ///
    /// [`ClusterError::InvalidConfig`] if the mirror was already started, or the client
    /// refuses its connection settings.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    #[track_caller]
    pub fn start(&self, worker: &Worker) -> Result<(), ClusterError> {
        let inner = &self.inner;
        let already = || ClusterError::InvalidConfig {
            reason: "the mirror is already started".to_owned(),
        };
        if inner.running.get().is_some() {
            return Err(already());
        }
        let conn = inner.shared.connect()?;
        let (flushed_tx, flushed) = watch::channel(false);
        let running = Running {
            worker: worker.clone(),
            conn: conn.clone(),
            flushed,
            tasks: Mutex::default(),
        };
        if inner.running.set(running).is_err() {
            return Err(already());
        }
        let mut tasks = vec![
            tokio::spawn(writer::run(
                Arc::clone(&inner.shared),
                worker.clone(),
                conn.clone(),
                flushed_tx,
            )),
            tokio::spawn(heartbeat::run(
                Arc::clone(&inner.shared),
                worker.clone(),
                conn.clone(),
            )),
            tokio::spawn(trimmer::run(Arc::clone(&inner.shared), conn)),
        ];
        if inner.shared.settings.listen_for_cancels {
            tasks.push(tokio::spawn(listener::run(
                Arc::clone(&inner.shared),
                worker.clone(),
            )));
        }
        // From now on the worker's schedules claim each tick through this mirror (`ticks.rs`).
        let claimer: Weak<Inner> = Arc::downgrade(&self.inner);
        let claimer: Weak<dyn TickClaimer> = claimer;
        worker.claim_ticks_with(claimer);
        *inner
            .running()?
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tasks;
        tracing::info!(
            namespace = %inner.shared.settings.namespace,
            replica = %inner.shared.settings.replica,
            lease = ?inner.shared.settings.lease,
            "redis mirror started"
        );
        Ok(())
    }

    /// Cancels the job `id` wherever it runs, and waits up to `wait` for its final status.
    ///
    /// A job of this replica is cancelled here with [`Worker::cancel`]. For another replica's
    /// job, a cancel request is stored for that replica and published on its channel; the
    /// owner applies its own `cancel` (with its cancel timeout) as soon as the message arrives,
    /// or at its next heartbeat if the message was lost. Meanwhile this waits, polling the
    /// job, until it is terminal or `wait` has passed, and returns the job as last seen (give
    /// `wait` the owners' cancel timeout plus a margin).
    ///
    /// `Ok(None)` if no replica has the job. Cancelling a finished job returns it unchanged.
    ///
    /// # Errors
    ///
    /// As for [`job`](RedisMirror::job).
    ///
    /// # Cancel safety
    ///
    /// Once the request is stored, dropping the future does not take it back.
    pub async fn cancel(&self, id: &str, wait: Duration) -> Result<Option<ClusterJob>, ClusterError> {
        let inner = &self.inner;
        let running = inner.running()?;
        let Some(job) = self.job(id).await? else {
            return Ok(None);
        };
        if job.status.is_terminal() {
            return Ok(Some(job));
        }
        let own_run = inner
            .shared
            .run_of(job.generation)
            .is_some_and(|run| run.incarnation == job.incarnation);
        if job.replica == inner.shared.settings.replica && own_run {
            let worker = &running.worker;
            return match worker.task_info(id) {
                Some(info) if info.generation == job.generation => {
                    let _ = tokio::time::timeout(wait, worker.cancel(id)).await;
                    Ok(worker
                        .task_info(id)
                        .map(|info| self.local_job(info))
                        .or(Some(job)))
                }
                _ => Ok(Some(job)),
            };
        }
        match self
            .bounded(query::request_cancel(
                &inner.shared,
                running.conn.clone(),
                &job,
                CANCEL_FLAG_TTL,
            ))
            .await?
        {
            CancelRequest::Stored => {}
            CancelRequest::RunDead => return Ok(Some(job.lost())),
            CancelRequest::Finished | CancelRequest::Changed => return self.job(id).await,
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut last = job;
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            match self.job(id).await {
                Ok(Some(job)) => last = job,
                Ok(None) => return Ok(Some(last)),
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(_) => {}
            }
            if last.status.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok(Some(last));
            }
        }
    }

    /// A job of this replica's worker, as [`job`](RedisMirror::job) would show it once
    /// mirrored: for answering about local jobs without asking Redis.
    #[must_use]
    pub fn local_job(&self, info: TaskInfo) -> ClusterJob {
        let shared = &self.inner.shared;
        let status = if shared.is_lost(&info.id, info.generation) {
            ClusterStatus::Lost
        } else {
            info.status.into()
        };
        let fencing_token = shared.token_of(&info.id, info.generation);
        ClusterJob {
            id: info.id,
            status,
            fencing_token,
            replica: self.inner.shared.settings.replica.clone(),
            generation: info.generation,
            submitted_at: info.submitted_at,
            started_at: info.started_at,
            finished_at: info.finished_at,
            updated_at: SystemTime::now(),
            progress: info.progress,
            incarnation: shared.current_run().incarnation.clone(),
        }
    }

    /// The mirror's state: connected or not, lease held, queue depth, counters, last error.
    /// Never waits.
    #[must_use]
    pub fn health(&self) -> MirrorHealth {
        let link = &self.inner.shared.link;
        link.health.snapshot(
            &self.inner.shared.settings.replica,
            link.depth(),
            self.inner.shared.settings.queue_capacity,
            link.needs_resync(),
        )
    }

    /// Flushes what is left and leaves the cluster: call it after [`Worker::shutdown`].
    ///
    /// Waits up to `timeout` for every queued transition (and a re-sync if one is due) to be
    /// written, so that every job of this replica is terminal in Redis, then releases the
    /// lease, stops the background tasks and returns. Calling it again returns at once.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Unflushed`] if Redis could not take everything in time. The lease is
    /// then kept, to expire on its own: the unfinished jobs will be reported lost.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the wait; the background tasks keep running until `close`
    /// is called again.
    pub async fn close(&self, timeout: Duration) -> Result<(), ClusterError> {
        let inner = &self.inner;
        let Ok(running) = inner.running() else {
            return Ok(());
        };
        if inner.shared.stop.is_cancelled() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        writer::begin_close(&inner.shared);
        let mut flushed = running.flushed.clone();
        // (Not holding the watch's `Ref` across the awaits below, or this future is not `Send`.)
        let flushed = matches!(
            tokio::time::timeout_at(deadline, flushed.wait_for(|done| *done)).await,
            Ok(Ok(_))
        );
        inner.shared.stop.cancel();
        let tasks = std::mem::take(&mut *running.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            if tokio::time::timeout_at(deadline, async { task.await.ok() })
                .await
                .is_err()
            {
                break;
            }
        }
        if !flushed {
            let unwritten = inner.shared.link.depth();
            tracing::warn!(unwritten, ?timeout, "redis mirror closed without flushing");
            return Err(ClusterError::Unflushed { timeout, unwritten });
        }
        let released =
            tokio::time::timeout_at(deadline, lease::release(&inner.shared, running.conn.clone())).await;
        inner
            .shared
            .link
            .health
            .lease_held
            .store(false, Ordering::Relaxed);
        match released {
            Ok(Ok(())) => {
                tracing::info!(replica = %inner.shared.settings.replica, "redis mirror flushed, lease released");
                Ok(())
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ClusterError::Timeout { timeout }),
        }
    }

    pub(crate) async fn bounded<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, ClusterError> {
        let timeout = self.inner.shared.settings.query_timeout;
        match tokio::time::timeout(timeout, query).await {
            Ok(result) => result,
            Err(_) => Err(ClusterError::Timeout { timeout }),
        }
    }
}
