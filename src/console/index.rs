//! [`JobIndex`]: the worker's jobs in submission order, for paging newest first.
//!
//! The index is an [`Observer`]: it learns of every submission from its `Pending` transition
//! and of every end from its terminal one, under its own mutex, never the worker's. The worker
//! itself keeps no order (its registry is a hash map), and a plain `submit` without an index
//! pays nothing for it.
//!
//! # Invariants
//!
//! - Entries are keyed by the submission's generation, which the worker hands out in
//!   submission order, so the map's order is submission order.
//! - A live (pending or running) entry is never dropped. Finished entries beyond the limit are
//!   dropped oldest-finished first, as the worker's own retention does.
//! - The index may hold entries the worker has already removed (its retention does not tell
//!   observers): readers check each entry against the worker and [`JobIndex::forget`] the stale
//!   ones.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::observe::{Observer, Transition};

/// The jobs of a [`Worker`](crate::Worker) in submission order: what lets
/// [`Console`](super::Console) serve a page of `GET /jobs` in a time that does not grow with the
/// number of jobs.
///
/// Register it on the builder as an observer (it is a cheap `Clone` around one `Arc`), and hand
/// the same index to the console. It keeps every live job and, of the finished ones, the
/// `max_finished` that finished last; give it at least the worker's
/// [`max_tracked`](crate::WorkerBuilder::max_tracked) so that every job the worker tracks is
/// listed. Each transition takes its mutex for a map insert or update (about a hundred
/// nanoseconds); a worker without the index pays nothing.
///
/// # Examples
///
/// ```
/// use background_worker::console::{Console, JobIndex};
/// use background_worker::Worker;
///
/// let index = JobIndex::new(10_000);
/// let worker = Worker::builder().max_tracked(10_000).observer(index.clone()).build();
/// let app: axum::Router = Console::new(worker).index(index).router();
/// ```
#[derive(Clone)]
pub struct JobIndex {
    inner: Arc<Mutex<Entries>>,
}

struct Entries {
    by_generation: BTreeMap<u64, Entry>,
    /// Generations of finished entries, in the order they finished (some may be gone).
    finished: VecDeque<u64>,
    max_finished: usize,
}

struct Entry {
    id: Arc<str>,
    status: &'static str,
}

/// One entry handed out by [`JobIndex::scan`].
#[derive(Debug, Clone)]
pub(crate) struct Indexed {
    pub(crate) generation: u64,
    pub(crate) id: Arc<str>,
}

impl JobIndex {
    /// An empty index keeping every live job and up to `max_finished` finished ones.
    #[must_use]
    pub fn new(max_finished: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Entries {
                by_generation: BTreeMap::new(),
                finished: VecDeque::new(),
                max_finished,
            })),
        }
    }

    /// How many jobs the index holds (some may have left the worker already).
    ///
    /// ```
    /// assert_eq!(background_worker::console::JobIndex::new(10).len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries().by_generation.len()
    }

    /// Whether the index holds no job.
    ///
    /// ```
    /// assert!(background_worker::console::JobIndex::new(10).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Up to `max` entries submitted before `before` (all if `None`), newest first, whose
    /// status is accepted by `status` (any if `None`); and the generation where the scan
    /// stopped (the last one looked at), if it did not reach the oldest entry; and how many it
    /// looked at, at most `budget`.
    pub(crate) fn scan(
        &self,
        before: Option<u64>,
        status: Option<&str>,
        max: usize,
        budget: usize,
    ) -> (Vec<Indexed>, Option<u64>, usize) {
        let entries = self.entries();
        let mut found = Vec::with_capacity(max.min(budget));
        let mut last = None;
        let range = entries.by_generation.range(..before.unwrap_or(u64::MAX));
        let mut looked = 0;
        for (&generation, entry) in range.rev() {
            if found.len() == max || looked == budget {
                return (found, last, looked);
            }
            looked += 1;
            last = Some(generation);
            if status.is_none_or(|status| status == entry.status) {
                found.push(Indexed {
                    generation,
                    id: Arc::clone(&entry.id),
                });
            }
        }
        (found, None, looked)
    }

    /// Drops entries a reader found stale (their task left the worker, or was re-submitted).
    pub(crate) fn forget(&self, generations: &[u64]) {
        if generations.is_empty() {
            return;
        }
        let mut entries = self.entries();
        for generation in generations {
            entries.by_generation.remove(generation);
        }
    }
}

impl Entries {
    fn record(&mut self, transition: &Transition<'_>) {
        let status = transition.status.name();
        if let Some(entry) = self.by_generation.get_mut(&transition.generation) {
            entry.status = status;
        } else if !transition.status.is_terminal() {
            self.by_generation.insert(
                transition.generation,
                Entry {
                    id: Arc::from(transition.id),
                    status,
                },
            );
        } else {
            return;
        }
        if transition.status.is_terminal() {
            self.finished.push_back(transition.generation);
            while self.finished.len() > self.max_finished {
                let Some(oldest) = self.finished.pop_front() else {
                    break;
                };
                self.by_generation.remove(&oldest);
            }
        }
    }
}

impl Observer for JobIndex {
    fn on_transition(&self, transition: &Transition<'_>) {
        self.entries().record(transition);
    }
}

impl fmt::Debug for JobIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobIndex").field("len", &self.len()).finish()
    }
}
