//! What the mirror's background tasks share, below them and below the handle: the settings, the
//! key layout, the scripts, this run's names, the [`Link`] with the observer, and the stop
//! signals. The handle (`mirror.rs`) owns one [`Shared`] in an `Arc` and hands clones to its
//! tasks; nothing here imports a task or the handle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::observe::Transition;
use crate::redis::conn::{cluster_client, Conn};
use crate::redis::health::HealthCell;
use crate::redis::keys::{digest, incarnation, Keys};
use crate::redis::queue::{Pushed, Queue};
use crate::redis::scripts::Scripts;
use crate::redis::settings::Settings;
use crate::redis::update::Update;

/// The state behind every clone of one mirror that its background tasks use.
/// Cluster events a receiver may fall behind before it skips.
pub(crate) const EVENT_BUFFER: usize = 4_096;

pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) keys: Keys,
    /// SHA-1 of the replica name: its keys and channel.
    pub(crate) replica_hash: String,
    /// The current run of the replica; replaced (never changed back) when a run is found dead.
    pub(crate) run: watch::Sender<Arc<Run>>,
    /// The submissions of dead runs whose records read `lost`: id to generation. Pruned once
    /// the worker no longer has that submission.
    lost: Mutex<HashMap<Arc<str>, u64>>,
    /// The fencing tokens of this replica's claimed submissions: id to (generation, token,
    /// spawned), entered before the task is spawned, read by the writer, pruned once the task
    /// was spawned and the worker no longer has that submission.
    claims: Mutex<HashMap<Arc<str>, (u64, u64, bool)>>,
    pub(crate) client: redis::Client,
    pub(crate) scripts: Scripts,
    pub(crate) link: Arc<Link>,
    /// Ends every background task.
    pub(crate) stop: CancellationToken,
    /// `close` began: the writer flushes and finishes.
    pub(crate) closing: AtomicBool,
    /// Every replica's status changes as published on `{ns}:events` (bounded: a slow
    /// receiver skips, the listener never waits).
    pub(crate) events: tokio::sync::broadcast::Sender<ClusterEvent>,
    /// Wakes the listener when a receiver of `events` appears: it subscribes to `{ns}:events`
    /// only while someone receives them (a replica without an open `/events` stream reads none).
    pub(crate) events_wanted: Notify,
}

/// One status change published by a replica's write (`write.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterEvent {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) replica: String,
}

impl ClusterEvent {
    /// Parses `<status>:<len(replica)>:<replica><id>`.
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        let (status, rest) = text.split_once(':')?;
        let (len, rest) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let (replica, id) = (rest.get(..len)?, rest.get(len..)?);
        Some(Self {
            id: id.to_owned(),
            status: status.to_owned(),
            replica: replica.to_owned(),
        })
    }
}

impl Shared {
    pub(crate) fn new(client: redis::Client, settings: Settings, link: Arc<Link>) -> Self {
        Self {
            keys: Keys::new(&settings.namespace),
            replica_hash: digest(&settings.replica),
            run: watch::Sender::new(Arc::new(Run::new(0))),
            lost: Mutex::default(),
            claims: Mutex::default(),
            events: tokio::sync::broadcast::Sender::new(EVENT_BUFFER),
            events_wanted: Notify::new(),
            settings,
            client,
            scripts: Scripts::new(),
            link,
            stop: CancellationToken::new(),
            closing: AtomicBool::new(false),
        }
    }

    /// The current run.
    pub(crate) fn current_run(&self) -> Arc<Run> {
        Arc::clone(&self.run.borrow())
    }

    /// The run that owns the submission of `generation`: the current one, or `None` for a
    /// dead run's submission (nothing of it is written any more).
    pub(crate) fn run_of(&self, generation: u64) -> Option<Arc<Run>> {
        let run = self.current_run();
        (generation >= run.from_generation).then_some(run)
    }

    /// The `{ns}:replicas` field of `run`.
    pub(crate) fn replicas_field(&self, run: &Run) -> String {
        format!("{}:{}", self.replica_hash, run.incarnation)
    }

    /// Whether this submission belonged to a dead run and its record reads `lost`.
    pub(crate) fn is_lost(&self, id: &str, generation: u64) -> bool {
        let lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        lost.get(id) == Some(&generation)
    }

    /// Notes submissions of a dead run as `lost`.
    pub(crate) fn note_lost(&self, submissions: impl IntoIterator<Item = (Arc<str>, u64)>) {
        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        lost.extend(submissions);
    }

    /// Forgets the lost submissions that `keep` says are gone from the worker.
    pub(crate) fn prune_lost(&self, mut keep: impl FnMut(&str, u64) -> bool) {
        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        if !lost.is_empty() {
            lost.retain(|id, generation| keep(id, *generation));
        }
    }

    /// Notes the fencing token of the claimed submission `id`, `generation`, before its task is
    /// spawned (then [`spawned_claim`](Self::spawned_claim); until then pruning keeps it).
    pub(crate) fn note_claim(&self, id: &str, generation: u64, token: u64) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.insert(Arc::from(id), (generation, token, false));
    }

    /// The task of the claim `id`, `generation` was spawned: pruning may drop it once the
    /// worker no longer has it.
    pub(crate) fn spawned_claim(&self, id: &str, generation: u64) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(claim) = claims.get_mut(id).filter(|claim| claim.0 == generation) {
            claim.2 = true;
        }
    }

    /// Forgets the claim of `id`, `generation` (its task was refused locally).
    pub(crate) fn forget_claim(&self, id: &str, generation: u64) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if claims.get(id).is_some_and(|claim| claim.0 == generation) {
            claims.remove(id);
        }
    }

    /// The fencing token of the submission `id`, `generation`, if it was claimed.
    pub(crate) fn token_of(&self, id: &str, generation: u64) -> Option<u64> {
        let claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims
            .get(id)
            .and_then(|&(claimed, token, _)| (claimed == generation).then_some(token))
    }

    /// Forgets the spawned claims that `keep` says are gone from the worker.
    pub(crate) fn prune_claims(&self, mut keep: impl FnMut(&str, u64) -> bool) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if !claims.is_empty() {
            claims.retain(|id, (generation, _, spawned)| !*spawned || keep(id, *generation));
        }
    }

    /// The connection settings: short timeouts so that no caller waits long on a dead Redis,
    /// reconnection in the background with a backoff capped at one second.
    /// The mirror's connection: the `{ns}` slot's master on a Redis Cluster
    /// (`redis+cluster://`), one lazily connected node otherwise.
    pub(crate) fn connect(&self) -> Result<Conn, redis::RedisError> {
        Ok(if self.settings.cluster {
            Conn::cluster(
                cluster_client(
                    self.client.get_connection_info().clone(),
                    self.settings.call_timeout(),
                )
                .build()?,
                &self.settings.namespace,
            )
        } else {
            Conn::Single(redis::aio::ConnectionManager::new_lazy_with_config(
                self.client.clone(),
                self.manager_config(),
            )?)
        })
    }

    pub(crate) fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(self.settings.call_timeout()))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
    }
}

/// One run of this replica: from its start, or from the moment its previous run was found
/// dead, until it ends. Its incarnation token is its lease's value and part of its keys.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) incarnation: String,
    /// The first generation of the worker this run owns; earlier ones belong to dead runs.
    pub(crate) from_generation: u64,
    /// The run took its lease once: a lease missing later means it lapsed (or Redis forgot).
    pub(crate) ever_held: AtomicBool,
}

impl Run {
    pub(crate) fn new(from_generation: u64) -> Self {
        Self {
            incarnation: incarnation(),
            from_generation,
            ever_held: AtomicBool::new(false),
        }
    }
}

/// What the observer shares with the mirror's background tasks. It holds no
/// [`Worker`](crate::Worker), so the worker (which owns the observer) and the mirror (which owns
/// a worker handle) do not keep each other alive through it.
#[derive(Debug)]
pub(crate) struct Link {
    /// The updates waiting for the writer (see `queue.rs`). A plain mutex: held for one merge
    /// or one push by the observer, and for one swap by the writer; never across an `.await`.
    queue: Mutex<Queue>,
    /// Submissions the queue may hold.
    capacity: usize,
    /// Set when an update could not be queued: the writer re-syncs from the registry.
    pub(crate) resync: AtomicBool,
    /// A re-sync is being written.
    pub(crate) resyncing: AtomicBool,
    /// Wakes the writer: the queue is no longer empty, or a re-sync or the close is due.
    pub(crate) wake: Notify,
    pub(crate) health: HealthCell,
    /// The highest generation the observer saw submitted (plus one; 0: none).
    pub(crate) generations: AtomicU64,
}

impl Link {
    pub(crate) fn new(settings: &Settings) -> Self {
        Self {
            queue: Mutex::default(),
            capacity: settings.queue_capacity,
            generations: AtomicU64::new(0),
            resync: AtomicBool::new(false),
            resyncing: AtomicBool::new(false),
            wake: Notify::new(),
            health: HealthCell::new(settings),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a transition without waiting (merged into its submission's waiting update if
    /// there is one); when the queue is full, schedules a re-sync instead.
    pub(crate) fn send_transition(&self, transition: &Transition<'_>) {
        let pushed = self.queue().push_transition(transition, self.capacity);
        self.pushed(pushed);
    }

    /// Queues `update` as [`send_transition`](Link::send_transition) does.
    pub(crate) fn send(&self, update: Update) {
        let pushed = self.queue().push(update, self.capacity);
        self.pushed(pushed);
    }

    fn pushed(&self, pushed: Pushed) {
        match pushed {
            // The writer is woken only when the queue stops being empty: while it writes, the
            // queue fills without a wake-up per transition.
            Pushed::Kept(true) => self.wake.notify_one(),
            Pushed::Kept(false) => {}
            Pushed::Full => {
                self.health.overflows.fetch_add(1, Ordering::Relaxed);
                if !self.resync.swap(true, Ordering::AcqRel) {
                    self.wake.notify_one();
                }
            }
        }
    }

    /// Takes every waiting update (the writer's side).
    pub(crate) fn take(&self) -> Vec<Update> {
        self.queue().take()
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

    /// Submissions whose updates wait to be written.
    pub(crate) fn depth(&self) -> usize {
        self.queue().len()
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterEvent;

    #[test]
    fn cluster_events_parse_hostile_names_and_refuse_garbage() {
        let event = ClusterEvent::parse("failed:7:a\nb {c}:job:1:\n".as_bytes()).expect("an event");
        assert_eq!(
            (event.status.as_str(), event.replica.as_str(), event.id.as_str()),
            ("failed", "a\nb {c}", ":job:1:\n")
        );
        let unicode = ClusterEvent::parse("running:3:ünx".as_bytes()).expect("an event");
        assert_eq!((unicode.replica.as_str(), unicode.id.as_str()), ("ün", "x"));
        for garbage in [
            "",
            "running",
            "running:",
            "running:x:a",
            "running:9:short",
            "running:1:ü",
        ] {
            assert_eq!(ClusterEvent::parse(garbage.as_bytes()), None, "{garbage:?}");
        }
        assert_eq!(ClusterEvent::parse(b"running:1:a\xff"), None);
    }
}
