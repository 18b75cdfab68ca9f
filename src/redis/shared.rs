//! What the mirror's background tasks share, below them and below the handle: the settings, the
//! key layout, the scripts, this run's names, the [`Link`] with the observer, and the stop
//! signals. The handle (`mirror.rs`) owns one [`Shared`] in an `Arc` and hands clones to its
//! tasks; nothing here imports a task or the handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::redis::health::HealthCell;
use crate::redis::keys::{digest, incarnation, Keys};
use crate::redis::scripts::Scripts;
use crate::redis::settings::Settings;
use crate::redis::update::Update;

/// The state behind every clone of one mirror that its background tasks use.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) keys: Keys,
    /// SHA-1 of the replica name: its keys and channel.
    pub(crate) replica_hash: String,
    /// This run of the replica: its lease's value.
    pub(crate) incarnation: String,
    pub(crate) client: redis::Client,
    pub(crate) scripts: Scripts,
    pub(crate) link: std::sync::Arc<Link>,
    /// Ends every background task.
    pub(crate) stop: CancellationToken,
    /// `close` began: the writer flushes and finishes.
    pub(crate) closing: AtomicBool,
}

impl Shared {
    pub(crate) fn new(client: redis::Client, settings: Settings, link: std::sync::Arc<Link>) -> Self {
        Self {
            keys: Keys::new(&settings.namespace),
            replica_hash: digest(&settings.replica),
            incarnation: incarnation(),
            settings,
            client,
            scripts: Scripts::new(),
            link,
            stop: CancellationToken::new(),
            closing: AtomicBool::new(false),
        }
    }

    /// The `{ns}:replicas` field of this run.
    pub(crate) fn replicas_field(&self) -> String {
        format!("{}:{}", self.replica_hash, self.incarnation)
    }

    /// The connection settings: short timeouts so that no caller waits long on a dead Redis,
    /// reconnection in the background with a backoff capped at one second.
    pub(crate) fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(self.settings.query_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
    }
}

/// What the observer shares with the mirror's background tasks. It holds no
/// [`Worker`](crate::Worker), so the worker (which owns the observer) and the mirror (which owns
/// a worker handle) do not keep each other alive through it.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) queue: mpsc::Sender<Update>,
    /// Set when an update could not be queued: the writer re-syncs from the registry.
    pub(crate) resync: AtomicBool,
    /// A re-sync is being written.
    pub(crate) resyncing: AtomicBool,
    /// Wakes the writer for a re-sync or the close.
    pub(crate) wake: Notify,
    pub(crate) health: HealthCell,
}

impl Link {
    pub(crate) fn new(queue: mpsc::Sender<Update>) -> Self {
        Self {
            queue,
            resync: AtomicBool::new(false),
            resyncing: AtomicBool::new(false),
            wake: Notify::new(),
            health: HealthCell::new(),
        }
    }

    /// Queues `update` without waiting; when the queue is full, schedules a re-sync instead.
    pub(crate) fn send(&self, update: Update) {
        match self.queue.try_send(update) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.health.overflows.fetch_add(1, Ordering::Relaxed);
                if !self.resync.swap(true, Ordering::AcqRel) {
                    self.wake.notify_one();
                }
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Schedules a re-sync from the registry.
    pub(crate) fn request_resync(&self) {
        self.resync.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// A re-sync is scheduled or under way.
    pub(crate) fn needs_resync(&self) -> bool {
        self.resync.load(Ordering::Acquire) || self.resyncing.load(Ordering::Acquire)
    }

    /// Transitions waiting to be written.
    pub(crate) fn depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}
