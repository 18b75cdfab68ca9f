//! Automatic removal of finished entries: after a time to live, beyond a maximum count, and at
//! the tracking cap to make room for a new submission (oldest finished first).

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::sync::tokio::sync::Notify;
use crate::sync::tokio::time::Instant;
use crate::sync::{Mutex, MutexGuard};

use crate::config::Limits;
use crate::counters::Counters;
use crate::registry::Registry;
use crate::slot::Slot;

/// The finished slots, oldest first, and the limits they are held to.
///
/// Lock order: the queue is taken before any registry shard (`prune` removes entries while it
/// holds the queue), and never while a shard or a slot is held.
#[derive(Debug)]
pub(crate) struct Retention {
    ttl: Option<Duration>,
    max_finished: Option<usize>,
    queue: Mutex<VecDeque<Expiry>>,
    /// With a tracking cap and no other limit, nothing else takes slots out of the queue: past
    /// this length, the ones no longer registered (replaced by a re-submission) are dropped.
    compact_at: Option<usize>,
    /// Wakes the TTL reaper when the queue gets its first item.
    wake: Notify,
}

/// A finished slot and when it finished. The slot may have been removed or replaced since:
/// removal then skips it.
#[derive(Debug)]
struct Expiry {
    slot: Arc<Slot>,
    finished: Instant,
}

impl Retention {
    /// Retention for these limits, and with a tracking cap (`max_tracked`) the queue that
    /// [`make_room`](Self::make_room) takes the oldest finished entry from. `None` if there is
    /// nothing to do.
    pub(crate) fn new(limits: Limits, max_tracked: Option<usize>) -> Option<Self> {
        let limited = limits.ttl.is_some() || limits.max_finished.is_some();
        (limited || max_tracked.is_some()).then(|| Self {
            ttl: limits.ttl,
            max_finished: limits.max_finished,
            queue: Mutex::default(),
            compact_at: max_tracked
                .filter(|_| !limited)
                .map(|max| max.saturating_mul(2).max(64)),
            wake: Notify::new(),
        })
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Expiry>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// Queues a slot that just finished; with a maximum count, removes what is in excess.
    pub(crate) fn finished(&self, slot: Arc<Slot>, registry: &Registry, counters: &Counters) {
        let finished = slot.finished_at().unwrap_or_else(Instant::now);
        let mut stale = VecDeque::new();
        let was_empty = {
            let mut queue = self.queue();
            queue.push_back(Expiry { slot, finished });
            if self.compact_at.is_some_and(|at| queue.len() > at) {
                let (kept, gone) = std::mem::take(&mut *queue)
                    .into_iter()
                    .partition(|expiry| registry.holds(&expiry.slot));
                *queue = kept;
                stale = gone;
            }
            queue.len() == 1
        };
        drop(stale);
        if was_empty && self.ttl.is_some() {
            self.wake.notify_one();
        }
        if self.max_finished.is_some() {
            self.prune(registry, counters, Instant::now());
        }
    }

    /// Removes finished entries past their time to live or beyond the maximum count, oldest
    /// first. Returns when the next one expires, if a time to live is set.
    pub(crate) fn prune(&self, registry: &Registry, counters: &Counters, now: Instant) -> Option<Instant> {
        // Slots taken out are dropped after the queue's lock is released.
        let mut gone = Vec::new();
        let next = {
            let mut queue = self.queue();
            while let Some(oldest) = queue.front() {
                let expired = self.ttl.is_some_and(|ttl| oldest.finished + ttl <= now);
                let excess = self.max_finished.is_some_and(|max| counters.finished() > max);
                if !expired && !excess {
                    break;
                }
                let Some(expiry) = queue.pop_front() else { break };
                if let Some(removed) = registry.remove_if_finished(&expiry.slot) {
                    counters.remove(removed.status_index(), 1);
                    gone.push(removed);
                }
                gone.push(expiry.slot);
            }
            self.ttl
                .and_then(|ttl| queue.front().map(|oldest| oldest.finished + ttl))
        };
        drop(gone);
        next
    }

    /// At the tracking cap: removes the finished entry that finished first and is still
    /// registered, whatever its time to live. Returns whether one was removed.
    pub(crate) fn make_room(&self, registry: &Registry, counters: &Counters) -> bool {
        // Slots taken out are dropped after the queue's lock is released.
        let mut gone = Vec::new();
        let made = {
            let mut queue = self.queue();
            loop {
                let Some(expiry) = queue.pop_front() else {
                    break false;
                };
                let removed = registry.remove_if_finished(&expiry.slot);
                gone.push(expiry.slot);
                if let Some(removed) = removed {
                    counters.remove(removed.status_index(), 1);
                    gone.push(removed);
                    break true;
                }
            }
        };
        drop(gone);
        made
    }

    /// Forgets queued slots that are no longer registered (after a cleanup), keeping the queue
    /// small.
    pub(crate) fn forget_removed(&self, registry: &Registry) {
        let stale: VecDeque<Expiry> = {
            let mut queue = self.queue();
            let (kept, stale) = std::mem::take(&mut *queue)
                .into_iter()
                .partition(|expiry| registry.holds(&expiry.slot));
            *queue = kept;
            stale
        };
        drop(stale);
    }

    /// Waits until a finished entry is queued (for the TTL reaper).
    pub(crate) async fn queued(&self) {
        self.wake.notified().await;
    }
}
