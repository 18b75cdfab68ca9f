//! [`MirrorHealth`] and the counters behind it; connection errors logged at a bounded rate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::redis::settings::Settings;

/// At most one WARN log per this interval for Redis errors; the others are counted.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// A snapshot of a [`RedisMirror`](crate::RedisMirror)'s state, from
/// [`RedisMirror::health`](crate::RedisMirror::health). Reading it never waits for Redis.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), background_worker::ClusterError> {
/// let mirror = background_worker::RedisMirror::builder("redis://127.0.0.1:6379").build()?;
/// let health = mirror.health();
/// assert!(!health.connected); // not started yet
/// assert!(health.degraded);
/// assert_eq!(health.queue_depth, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[non_exhaustive]
pub struct MirrorHealth {
    /// The replica's name.
    pub replica: String,
    /// The last call to Redis succeeded, and one did within the last `min(lease, 2 s)` (on
    /// this replica's clock): a Redis that stopped answering shows here within one lease.
    pub connected: bool,
    /// This run's lease was confirmed by Redis within the last lease (on this replica's clock).
    /// `false` means the cluster may already see this run as dead.
    pub lease_held: bool,
    /// Not connected, not holding the lease, or waiting to re-sync: the cluster view of this
    /// replica's jobs may be behind. The local worker is unaffected.
    pub degraded: bool,
    /// Runs of this replica that were found dead (their lease lapsed: a pause, a partition);
    /// each time the replica started a new run.
    pub runs_lost: u64,
    /// Tasks cancelled here because their run was found dead (their records read `lost`).
    pub lost_tasks_cancelled: u64,
    /// Tasks cancelled here by self-fencing
    /// ([`MirrorBuilder::self_fence`](crate::MirrorBuilder::self_fence)).
    pub self_fenced: u64,
    /// Submissions whose latest state waits to be written (a submission's transitions wait
    /// merged into one entry).
    pub queue_depth: usize,
    /// The bound of that queue.
    pub queue_capacity: usize,
    /// Transitions (and progress samples) written to Redis so far.
    pub written: u64,
    /// Writes that Redis refused as stale (an older submission or an earlier stage).
    pub fenced: u64,
    /// Transitions (or progress samples) not queued because the queue was full (each schedules a re-sync from the
    /// registry, which covers them).
    pub overflows: u64,
    /// Re-syncs done (after an overflow, after a new run began, or after Redis forgot the lease
    /// or began a new epoch: a restart, a flush, a failover).
    pub resyncs: u64,
    /// A re-sync is scheduled.
    pub needs_resync: bool,
    /// Redis errors seen.
    pub errors: u64,
    /// The latest Redis error, if any.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<SystemTime>,
}

/// The live counters behind [`MirrorHealth`].
#[derive(Debug)]
pub(crate) struct HealthCell {
    /// The bound on each call of the background tasks.
    pub(crate) call_timeout: Duration,
    lease: Duration,
    /// How recent the last successful call must be to count as connected.
    fresh: Duration,
    /// The clock the `*_at` marks count from.
    base: Instant,
    /// When a call last succeeded (ms since `base`, plus one; 0: never).
    last_ok_at: AtomicU64,
    /// When the last renewal that Redis confirmed was sent (ms since `base`, plus one).
    confirmed_at: AtomicU64,
    pub(crate) runs_lost: AtomicU64,
    pub(crate) lost_tasks_cancelled: AtomicU64,
    pub(crate) self_fenced: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) lease_held: AtomicBool,
    pub(crate) written: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) overflows: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) errors: AtomicU64,
    last: Mutex<LastError>,
}

#[derive(Debug, Default)]
struct LastError {
    message: Option<String>,
    at: Option<SystemTime>,
    logged: Option<Instant>,
    suppressed: u64,
}

impl HealthCell {
    pub(crate) fn new(settings: &Settings) -> Self {
        Self {
            call_timeout: settings.call_timeout(),
            lease: settings.lease,
            fresh: settings.lease.min(Duration::from_secs(2)),
            base: Instant::now(),
            last_ok_at: AtomicU64::new(0),
            confirmed_at: AtomicU64::new(0),
            runs_lost: AtomicU64::new(0),
            lost_tasks_cancelled: AtomicU64::new(0),
            self_fenced: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            lease_held: AtomicBool::new(false),
            written: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last: Mutex::default(),
        }
    }

    fn mark(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// How long ago the mark was set; `None` if never.
    fn since(&self, mark: &AtomicU64) -> Option<Duration> {
        match mark.load(Ordering::Acquire) {
            0 => None,
            at => Some(
                Instant::now()
                    .saturating_duration_since(self.base)
                    .saturating_sub(Duration::from_millis(at - 1)),
            ),
        }
    }

    /// A command succeeded.
    pub(crate) fn ok(&self) {
        self.connected.store(true, Ordering::Relaxed);
        self.last_ok_at
            .fetch_max(self.mark(Instant::now()), Ordering::AcqRel);
    }

    /// Redis confirmed the lease of a renewal sent at `sent`.
    pub(crate) fn confirmed(&self, sent: Instant) {
        self.lease_held.store(true, Ordering::Release);
        self.confirmed_at.fetch_max(self.mark(sent), Ordering::AcqRel);
    }

    /// The lease was confirmed within the last lease (on this replica's clock).
    pub(crate) fn lease_fresh(&self) -> bool {
        self.lease_held.load(Ordering::Acquire) && self.unconfirmed_for().is_some_and(|ago| ago < self.lease)
    }

    /// How long ago the lease was last confirmed (from when that renewal was sent).
    pub(crate) fn unconfirmed_for(&self) -> Option<Duration> {
        self.since(&self.confirmed_at)
    }

    /// A command failed: counted, remembered, and logged at WARN at most once per
    /// [`LOG_EVERY`] (with how many were not logged since).
    pub(crate) fn error(&self, what: &str, error: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Relaxed);
        let message = format!("{what}: {error}");
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.logged.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            tracing::warn!(error = %message, suppressed = last.suppressed, "redis mirror");
            last.logged = Some(now);
            last.suppressed = 0;
        } else {
            last.suppressed += 1;
        }
        last.message = Some(message);
        last.at = Some(SystemTime::now());
    }

    pub(crate) fn snapshot(
        &self,
        replica: &str,
        queue_depth: usize,
        queue_capacity: usize,
        needs_resync: bool,
    ) -> MirrorHealth {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let connected = self.connected.load(Ordering::Relaxed)
            && self.since(&self.last_ok_at).is_some_and(|ago| ago < self.fresh);
        let lease_held = self.lease_fresh();
        MirrorHealth {
            replica: replica.to_owned(),
            connected,
            lease_held,
            degraded: !connected || !lease_held || needs_resync,
            queue_depth,
            queue_capacity,
            written: self.written.load(Ordering::Relaxed),
            fenced: self.fenced.load(Ordering::Relaxed),
            overflows: self.overflows.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            runs_lost: self.runs_lost.load(Ordering::Relaxed),
            lost_tasks_cancelled: self.lost_tasks_cancelled.load(Ordering::Relaxed),
            self_fenced: self.self_fenced.load(Ordering::Relaxed),
            needs_resync,
            errors: self.errors.load(Ordering::Relaxed),
            last_error: last.message.clone(),
            last_error_at: last.at,
        }
    }
}
