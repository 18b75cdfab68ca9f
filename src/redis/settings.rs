//! The settings a mirror was built with, fixed from then on.

use std::time::Duration;

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) namespace: String,
    pub(crate) replica: String,
    pub(crate) lease: Duration,
    pub(crate) retention: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) query_timeout: Duration,
    pub(crate) progress_interval: Duration,
    pub(crate) trim_interval: Duration,
    pub(crate) listen_for_cancels: bool,
    /// Cancel this run's unfinished tasks once the lease was not confirmed for this long.
    pub(crate) self_fence: Option<Duration>,
    /// The URL names a node of a Redis Cluster (`redis+cluster://`).
    pub(crate) cluster: bool,
}

impl Settings {
    /// How often the heartbeat renews the lease: a third of it, at most a second (so that
    /// health is never more than about a second behind).
    pub(crate) fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).min(Duration::from_secs(1))
    }

    /// The bound on each Redis call of the mirror's background tasks: shorter than a heartbeat,
    /// so a slow or black-holed Redis shows within one lease.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.query_timeout.min(self.heartbeat_every())
    }

    /// The lease in ms, for the scripts.
    pub(crate) fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}
