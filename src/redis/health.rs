//! [`MirrorHealth`] and the counters behind it; connection errors logged at a bounded rate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

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
    /// The last command to Redis succeeded.
    pub connected: bool,
    /// The replica holds its lease in Redis: the cluster sees its jobs as alive.
    pub lease_held: bool,
    /// Not connected, not holding the lease, or waiting to re-sync: the cluster view of this
    /// replica's jobs may be behind. The local worker is unaffected.
    pub degraded: bool,
    /// Transitions waiting to be written.
    pub queue_depth: usize,
    /// The bound of that queue.
    pub queue_capacity: usize,
    /// Transitions (and progress samples) written to Redis so far.
    pub written: u64,
    /// Writes that Redis refused as stale (an older submission or an earlier stage).
    pub fenced: u64,
    /// Transitions not queued because the queue was full (each schedules a re-sync from the
    /// registry, which covers them).
    pub overflows: u64,
    /// Re-syncs done (after an overflow, or after Redis lost the lease: an expiry or a restart).
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
    pub(crate) connected: AtomicBool,
    pub(crate) lease_held: AtomicBool,
    /// The lease was held at least once by this run.
    pub(crate) ever_held: AtomicBool,
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
    pub(crate) fn new() -> Self {
        Self {
            connected: AtomicBool::new(false),
            lease_held: AtomicBool::new(false),
            ever_held: AtomicBool::new(false),
            written: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last: Mutex::default(),
        }
    }

    /// A command succeeded.
    pub(crate) fn ok(&self) {
        self.connected.store(true, Ordering::Relaxed);
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
        let connected = self.connected.load(Ordering::Relaxed);
        let lease_held = self.lease_held.load(Ordering::Relaxed);
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
            needs_resync,
            errors: self.errors.load(Ordering::Relaxed),
            last_error: last.message.clone(),
            last_error_at: last.at,
        }
    }
}
