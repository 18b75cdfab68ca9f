//! [`Queue`]: the updates waiting for the writer, one entry per submission.
//!
//! A task's transitions come close together (`Pending`, `Running` and its end are often
//! microseconds apart), and the writer needs only the latest state of each submission. So a
//! transition of a submission that already waits is merged into its entry in place (no
//! allocation, no new entry), and the writer takes the whole queue at once, under one lock.
//! The bound counts submissions, not transitions: a burst of short tasks fills it three times
//! slower than a channel of transitions would.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::observe::Transition;
use crate::redis::update::Update;

/// Waiting updates in the order their submissions first came, and where each submission's is.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    updates: Vec<Update>,
    /// Generation to index in `updates`. A generation is unique per submission of one worker;
    /// the entry's id is compared too, so an observer registered on two workers (against the
    /// docs) only loses the merging, never mixes two tasks.
    index: HashMap<u64, usize, BuildHasherDefault<GenerationHasher>>,
}

/// What [`Queue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Merged into, or added as, an entry; `true` if the queue was empty before.
    Kept(bool),
    /// The queue holds `capacity` submissions already: the update was dropped.
    Full,
}

impl Queue {
    /// Merges a transition into its submission's entry, or adds one.
    pub(crate) fn push_transition(&mut self, transition: &Transition<'_>, capacity: usize) -> Pushed {
        if let Some(entry) = self.entry(transition.id, transition.generation) {
            entry.absorb(transition);
            return Pushed::Kept(false);
        }
        self.add(Update::from_transition(transition), capacity)
    }

    /// Merges an update (a progress sample) into its submission's entry, or adds one.
    pub(crate) fn push(&mut self, update: Update, capacity: usize) -> Pushed {
        if let Some(entry) = self.entry(&update.id, update.generation) {
            entry.merge(update);
            return Pushed::Kept(false);
        }
        self.add(update, capacity)
    }

    fn entry(&mut self, id: &str, generation: u64) -> Option<&mut Update> {
        let &at = self.index.get(&generation)?;
        self.updates.get_mut(at).filter(|entry| &*entry.id == id)
    }

    fn add(&mut self, update: Update, capacity: usize) -> Pushed {
        if self.updates.len() >= capacity {
            return Pushed::Full;
        }
        let was_empty = self.updates.is_empty();
        self.index.entry(update.generation).or_insert(self.updates.len());
        self.updates.push(update);
        Pushed::Kept(was_empty)
    }

    /// Submissions waiting.
    pub(crate) fn len(&self) -> usize {
        self.updates.len()
    }

    /// Takes every waiting update, in the order their submissions first came, leaving the
    /// queue empty with its memory kept (a burst's size is likely to come again).
    pub(crate) fn take(&mut self) -> Vec<Update> {
        self.index.clear();
        let capacity = self.updates.capacity();
        std::mem::replace(&mut self.updates, Vec::with_capacity(capacity.min(4_096)))
    }
}

/// Generations are a counter: used as their own hash (spread by one multiplication, so that
/// the map's bucket bits vary), they need no SipHash on the hot path.
#[derive(Debug, Default)]
pub(crate) struct GenerationHasher(u64);

impl Hasher for GenerationHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::redis::job::ClusterStatus;

    fn update(id: &str, generation: u64, status: ClusterStatus) -> Update {
        Update {
            id: Arc::from(id),
            generation,
            status,
            submitted_ms: 1,
            started_ms: None,
            finished_ms: None,
            progress: None,
        }
    }

    #[test]
    fn a_submission_waits_once_at_its_latest_stage() {
        let mut queue = Queue::default();
        assert_eq!(
            queue.push(update("a", 1, ClusterStatus::Pending), 2),
            Pushed::Kept(true)
        );
        assert_eq!(
            queue.push(update("b", 2, ClusterStatus::Pending), 2),
            Pushed::Kept(false)
        );
        // Full for a new submission, never for one that waits.
        assert_eq!(
            queue.push(update("c", 3, ClusterStatus::Pending), 2),
            Pushed::Full
        );
        assert_eq!(
            queue.push(update("a", 1, ClusterStatus::Completed), 2),
            Pushed::Kept(false)
        );
        assert_eq!(
            queue.push(update("b", 2, ClusterStatus::Running), 2),
            Pushed::Kept(false)
        );
        // The same generation under another id (a second worker) is not merged into it.
        assert_eq!(
            queue.push(update("x", 1, ClusterStatus::Running), 3),
            Pushed::Kept(false)
        );
        assert_eq!(queue.len(), 3);
        let taken: Vec<_> = queue
            .take()
            .iter()
            .map(|u| (u.id.to_string(), u.status.name()))
            .collect();
        assert_eq!(
            taken,
            [
                ("a".into(), "completed"),
                ("b".into(), "running"),
                ("x".into(), "running")
            ]
        );
        assert_eq!(queue.len(), 0);
        assert_eq!(
            queue.push(update("a", 4, ClusterStatus::Pending), 1),
            Pushed::Kept(true)
        );
    }
}
