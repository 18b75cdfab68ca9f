//! The schedules' wall clock, in milliseconds since the Unix epoch.
//!
//! Ticks are wall-clock instants, but timers run on tokio's clock, and tokio's paused clock
//! (tests with `start_paused`, tokio's `test-util`) does not move `SystemTime`. So the clock
//! keeps an anchor, a wall-clock reading and the tokio instant it was taken at, and reads "now"
//! as the anchor plus the tokio time elapsed since. At every tick the driver re-anchors it from
//! `SystemTime::now()`, but only while tokio's clock keeps pace with the real monotonic clock
//! (then the wall clock is the truth, and re-reading it follows NTP steps and a machine that was
//! suspended). While tokio's clock is paused or moved by hand, it has fallen behind or run
//! ahead of the real one, and the clock stays on its anchor: the schedules then follow tokio's
//! clock alone, from the wall-clock time it was read at first, which is what paused-time tests
//! drive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sync::tokio::time::Instant;

/// How far tokio's clock may drift from the real monotonic clock and still count as real time.
const IN_STEP: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(crate) struct Clock {
    /// Milliseconds since the Unix epoch at `at`.
    wall: u64,
    /// tokio's clock at the anchor.
    at: Instant,
    /// The real monotonic clock at the anchor.
    real: std::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            wall: wall_now(),
            at: Instant::now(),
            real: std::time::Instant::now(),
        }
    }

    /// Now, in milliseconds since the Unix epoch.
    pub(crate) fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.at.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall.saturating_add(elapsed)
    }

    /// The tokio instant at which the wall clock reads `ms` (now, for a time that passed).
    pub(crate) fn instant_at(&self, ms: u64) -> Instant {
        let now = self.now();
        Instant::now() + Duration::from_millis(ms.saturating_sub(now))
    }

    /// Re-reads the wall clock if tokio's clock runs in real time (see the module's doc).
    pub(crate) fn reanchor(&mut self) {
        let tokio = self.at.elapsed();
        let real = self.real.elapsed();
        let drift = tokio.abs_diff(real);
        if drift <= IN_STEP {
            *self = Self::new();
        }
    }
}

fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
