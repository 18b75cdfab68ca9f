//! [`Mark`]: a point in a task's life, kept as the time since its submission.

use std::num::NonZeroU64;
use std::time::Duration;

use crate::sync::tokio::time::Instant;

/// An instant at or after a reference instant (a slot's submission), kept as the nanoseconds
/// between them, plus one so that `Option<Mark>` takes 8 bytes where `Option<Instant>` takes 16.
///
/// Exact: [`at`](Self::at) gives back the instant [`new`](Self::new) was given, for any instant
/// within 584 years of the reference (later ones saturate there; earlier ones count as the
/// reference itself). Two of them in each slot (start and finish) are 16 bytes per task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark(NonZeroU64);

impl Mark {
    /// `at`, measured from `reference`.
    pub(crate) fn new(reference: Instant, at: Instant) -> Self {
        let nanos = u64::try_from(at.saturating_duration_since(reference).as_nanos()).unwrap_or(u64::MAX);
        Self(NonZeroU64::MIN.saturating_add(nanos))
    }

    /// The instant this mark stands for, given the same `reference`.
    pub(crate) fn at(self, reference: Instant) -> Instant {
        reference + Duration::from_nanos(self.0.get() - 1)
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn gives_back_the_instant_it_was_given() {
        let reference = Instant::now();
        for nanos in [0, 1, 999, 1_000_000_007, 86_400 * 1_000_000_000] {
            let at = reference + Duration::from_nanos(nanos);
            assert_eq!(Mark::new(reference, at).at(reference), at);
        }
    }

    #[test]
    fn an_instant_before_the_reference_counts_as_the_reference() {
        let reference = Instant::now() + Duration::from_secs(1);
        let earlier = reference - Duration::from_secs(1);
        assert_eq!(Mark::new(reference, earlier).at(reference), reference);
    }

    #[test]
    fn an_optional_mark_takes_eight_bytes() {
        assert_eq!(std::mem::size_of::<Option<Mark>>(), 8);
    }
}
