//! [`MirrorBuilder`]: the settings of a [`RedisMirror`].

use std::fmt;
use std::time::Duration;

use crate::redis::error::ClusterError;
use crate::redis::keys::valid_namespace;
use crate::redis::mirror::RedisMirror;
use crate::redis::settings::Settings;

/// The default [`MirrorBuilder::namespace`].
pub const DEFAULT_NAMESPACE: &str = "background-worker";
/// The default [`MirrorBuilder::lease`]: 10 seconds.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The default [`MirrorBuilder::retain_finished_for`]: 10 minutes.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(10 * 60);
/// The default [`MirrorBuilder::queue_capacity`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Longest replica name accepted, in bytes.
const MAX_REPLICA_BYTES: usize = 256;

/// The settings a [`RedisMirror`] is built with. Made by [`RedisMirror::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::RedisMirror;
///
/// # fn main() -> Result<(), background_worker::ClusterError> {
/// let mirror = RedisMirror::builder("redis://:secret@127.0.0.1:6379/0")
///     .namespace("jobs")
///     .replica("web-1")
///     .lease(Duration::from_secs(10))
///     .retain_finished_for(Duration::from_secs(600))
///     .build()?;
/// assert_eq!(mirror.replica(), "web-1");
/// // The password stays out of logs:
/// let builder = RedisMirror::builder("redis://:secret@127.0.0.1:6379");
/// assert!(!format!("{builder:?}").contains("secret"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct MirrorBuilder {
    pub(crate) url: String,
    pub(crate) settings: Settings,
}

impl fmt::Debug for MirrorBuilder {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorBuilder")
            .field("url", &redacted(&self.url))
            .field("settings", &self.settings)
            .finish()
    }
}

/// `url` with whatever stands between `://` and `@` (user and password) replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

impl RedisMirror {
    /// A builder for a mirror on the Redis at `url`: `redis://[user][:password@]host[:port][/db]`,
    /// or `rediss://...` for TLS (feature `redis-tls`). See [`MirrorBuilder`] for the settings.
    ///
    /// For a Redis Cluster, name any one of its nodes with the scheme `redis+cluster://` (or
    /// `rediss+cluster://`): the mirror then learns the cluster's slots from that node, sends
    /// every call to the master of the namespace's slot, follows `MOVED` and `ASK`, and finds
    /// the new master after a failover (through redis-rs's cluster support). Supported and
    /// tested topologies: one Redis server, and a Redis Cluster.
    pub fn builder(url: impl Into<String>) -> MirrorBuilder {
        MirrorBuilder::new(url.into())
    }
}

impl MirrorBuilder {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            settings: Settings {
                namespace: DEFAULT_NAMESPACE.to_owned(),
                replica: default_replica(),
                lease: DEFAULT_LEASE,
                retention: DEFAULT_RETENTION,
                queue_capacity: DEFAULT_QUEUE_CAPACITY,
                query_timeout: Duration::from_secs(2),
                progress_interval: Duration::from_secs(1),
                trim_interval: Duration::from_secs(5),
                listen_for_cancels: true,
                self_fence: None,
                cluster: false,
            },
        }
    }

    /// The namespace shared by every replica of one service: its keys all start with the hash
    /// tag `{namespace}`. 1 to 64 characters of `A-Z a-z 0-9 _ - .`. Default:
    /// [`DEFAULT_NAMESPACE`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings.namespace = namespace.into();
        self
    }

    /// This replica's name, unique in the namespace (a pod name, a host name and pid). It is
    /// data: any text up to 256 bytes. Default: the host name and the process id,
    /// `host-1234`.
    pub fn replica(mut self, name: impl Into<String>) -> Self {
        self.settings.replica = name.into();
        self
    }

    /// How long the replica's lease lasts without a renewal; it is renewed every third of
    /// that (at least every second). Once it has expired (judged by Redis's clock), the replica's unfinished jobs are
    /// reported [`Lost`](crate::ClusterStatus::Lost). Clamped to at least 300 ms. Default:
    /// [`DEFAULT_LEASE`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(300));
        self
    }

    /// How long finished records stay in Redis (a TTL set when the job finishes). Give it the
    /// worker's own [`retain_finished_for`](crate::WorkerBuilder::retain_finished_for), so that
    /// the cluster forgets a job when its replica does. Default: [`DEFAULT_RETENTION`].
    pub fn retain_finished_for(mut self, ttl: Duration) -> Self {
        self.settings.retention = ttl.max(Duration::from_millis(1));
        self
    }

    /// How many submissions may wait for Redis (while it is slow or unreachable, or behind a
    /// burst). A submission waits as one entry, its latest state: a later transition of it
    /// is merged into its entry and never needs room. Beyond the bound the observer drops new
    /// submissions' transitions and schedules a re-sync from the registry instead, so nothing
    /// is lost, only written later in one go. Default: [`DEFAULT_QUEUE_CAPACITY`].
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity.max(1);
        self
    }

    /// The bound on every cluster query ([`job`](RedisMirror::job), [`jobs`](RedisMirror::jobs)).
    /// Default: 2 seconds.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.settings.query_timeout = timeout;
        self
    }

    /// How often the progress of running tasks is sampled and mirrored (only changed values
    /// are written). Default: 1 second.
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.settings.progress_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How often the index of jobs is trimmed of expired records, and dead replicas' jobs are
    /// marked lost. Default: 5 seconds.
    pub fn trim_interval(mut self, interval: Duration) -> Self {
        self.settings.trim_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Whether to subscribe to this replica's cancel channel (default `true`). Without it,
    /// cancel requests from other replicas still arrive through the stored flags that every
    /// heartbeat reads, a third of a lease later: for a Redis proxy without pub/sub.
    pub fn listen_for_cancels(mut self, listen: bool) -> Self {
        self.settings.listen_for_cancels = listen;
        self
    }

    /// Self-fencing, for jobs that must never run on two replicas at once (off by default).
    ///
    /// With it, a replica that has not had its lease confirmed by Redis for `lease - margin` on
    /// its own clock cancels every unfinished task of its current run itself, before any other
    /// replica can find the run dead and report those jobs `lost` (and someone resubmits them).
    /// The margin covers the clock drift between the replica and Redis and the time the tasks
    /// take to stop; it is clamped to the lease.
    ///
    /// The trade-off: a Redis outage (or a partition from Redis) longer than `lease - margin`
    /// then cancels work that would otherwise have finished, on every replica it reaches.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::RedisMirror;
    ///
    /// # fn main() -> Result<(), background_worker::ClusterError> {
    /// let mirror = RedisMirror::builder("redis://127.0.0.1:6379")
    ///     .lease(Duration::from_secs(10))
    ///     .self_fence(Duration::from_secs(3)) // cancel after 7 s without a confirmed lease
    ///     .build()?;
    /// # drop(mirror);
    /// # Ok(())
    /// # }
    /// ```
    pub fn self_fence(mut self, margin: Duration) -> Self {
        self.settings.self_fence = Some(margin);
        self
    }

    /// Checks the settings and builds the mirror. It connects to nothing yet: that happens in
    /// [`RedisMirror::start`], so a replica starts even while Redis is down.
    ///
    /// # Errors
    ///
    /// [`ClusterError::InvalidConfig`] for a URL that is not a Redis URL, a `rediss://` URL
    /// without the `redis-tls` feature, a namespace outside the characters above, or an empty
    /// or oversized replica name.
    pub fn build(self) -> Result<RedisMirror, ClusterError> {
        let invalid = |reason: String| ClusterError::InvalidConfig { reason };
        if !valid_namespace(&self.settings.namespace) {
            return Err(invalid(format!(
                "namespace {:?} must be 1 to 64 of A-Z a-z 0-9 _ - .",
                self.settings.namespace
            )));
        }
        let replica = &self.settings.replica;
        if replica.is_empty() || replica.len() > MAX_REPLICA_BYTES {
            return Err(invalid(format!(
                "the replica name must be 1 to {MAX_REPLICA_BYTES} bytes"
            )));
        }
        if cfg!(not(feature = "redis-tls")) && self.url.starts_with("rediss://") {
            return Err(invalid(
                "rediss:// needs the `redis-tls` feature of background-worker".to_owned(),
            ));
        }
        let mut settings = self.settings;
        let url = match self.url.split_once("+cluster://") {
            Some((scheme @ ("redis" | "rediss"), rest)) => {
                settings.cluster = true;
                format!("{scheme}://{rest}")
            }
            _ => self.url,
        };
        let client = redis::Client::open(url.as_str())
            // The client's message may quote the URL; keep the password out of it.
            .map_err(|error| invalid(format!("not a usable Redis URL ({:?})", error.kind())))?;
        Ok(RedisMirror::new(client, settings))
    }
}

/// `host-pid`: the host name from the kernel or `HOSTNAME`, and this process's id.
pub(crate) fn default_replica() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}
