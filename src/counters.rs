//! Counts of tasks per status, striped so that transitions on different threads write different
//! cache lines.
//!
//! A status change adds to its thread's stripe (one of a few per CPU): no cache line is shared by
//! every thread, as a single set of counters would be. A read sums the stripes. A count can be
//! decremented on another stripe than the one it was incremented on, so one stripe may go
//! negative; the sums are exact whenever no transition is under way.

use std::cell::Cell;

use crate::status::TaskStatus;
use crate::sync::atomic::{AtomicIsize, Ordering};

/// The five statuses, by [`TaskStatus::index`].
const STATUSES: usize = 5;

/// One stripe: a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe([AtomicIsize; STATUSES]);

#[derive(Debug)]
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
}

thread_local! {
    /// This thread's stripe number, handed out in turn as threads first count something.
    static STRIPE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The next stripe number to hand out (only an index: not a synchronization point).
static NEXT_STRIPE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn this_thread() -> usize {
    STRIPE.with(|stripe| match stripe.get() {
        Some(index) => index,
        None => {
            let index = NEXT_STRIPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stripe.set(Some(index));
            index
        }
    })
}

impl Default for Counters {
    fn default() -> Self {
        // Two stripes per CPU, a power of two: threads that share a stripe are rare.
        let cpus = std::thread::available_parallelism().map_or(4, usize::from);
        let stripes = (2 * cpus).clamp(4, 64).next_power_of_two();
        Self {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
        }
    }
}

impl Counters {
    fn stripe(&self) -> &Stripe {
        &self.stripes[this_thread() & (self.stripes.len() - 1)]
    }

    /// One more task with status `index`.
    pub(crate) fn add(&self, index: u8) {
        self.stripe().0[usize::from(index)].fetch_add(1, Ordering::Relaxed);
    }

    /// `n` tasks fewer with status `index`.
    pub(crate) fn remove(&self, index: u8, n: usize) {
        let n = isize::try_from(n).unwrap_or(isize::MAX);
        self.stripe().0[usize::from(index)].fetch_sub(n, Ordering::Relaxed);
    }

    /// One task moved from status `from` to status `to`.
    pub(crate) fn moved(&self, from: u8, to: u8) {
        let stripe = self.stripe();
        stripe.0[usize::from(from)].fetch_sub(1, Ordering::Relaxed);
        stripe.0[usize::from(to)].fetch_add(1, Ordering::Relaxed);
    }

    /// Number of tasks with status `index` (never negative, though off by the transitions under
    /// way).
    pub(crate) fn get(&self, index: u8) -> usize {
        let sum: isize = self
            .stripes
            .iter()
            .map(|stripe| stripe.0[usize::from(index)].load(Ordering::Relaxed))
            .fold(0, isize::wrapping_add);
        usize::try_from(sum).unwrap_or(0)
    }

    /// Number of terminal tasks.
    pub(crate) fn finished(&self) -> usize {
        (TaskStatus::Completed.index()..=TaskStatus::Cancelled.index())
            .map(|index| self.get(index))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_moved_across_threads_add_up() {
        let counters = std::sync::Arc::new(Counters::default());
        for _ in 0..3 {
            counters.add(0);
        }
        let other = std::sync::Arc::clone(&counters);
        std::thread::spawn(move || {
            other.moved(0, 1);
            other.moved(0, 2);
        })
        .join()
        .unwrap();
        assert_eq!((counters.get(0), counters.get(1), counters.get(2)), (1, 1, 1));
        counters.remove(2, 1);
        assert_eq!(counters.get(2), 0);
        assert_eq!(counters.finished(), 0);
    }
}
