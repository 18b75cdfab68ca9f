//! When a schedule's ticks fall: a fixed period aligned to the Unix epoch, or a cron expression
//! (feature `cron`). Tick times are milliseconds since the Unix epoch, computed from the cadence
//! alone, so every process with the same cadence finds the same ticks whenever it looks.

use std::fmt;
use std::time::Duration;

/// A validated cadence, in milliseconds since the Unix epoch.
#[derive(Debug, Clone)]
pub(crate) enum Cadence {
    /// Ticks at `offset + k * period` for every whole `k >= 0` (`offset < period`).
    Every {
        /// At least 1.
        period: u64,
        offset: u64,
    },
    /// Ticks where the expression matches, in its time zone.
    #[cfg(feature = "cron")]
    Cron(Box<super::cron::CronCadence>),
}

impl Cadence {
    /// A period cadence; `None` for a period under a millisecond. Sub-millisecond parts are
    /// dropped and the offset is taken modulo the period.
    pub(crate) fn every(period: Duration, offset: Duration) -> Option<Self> {
        let period = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if period == 0 {
            return None;
        }
        let offset = u64::try_from(offset.as_millis()).unwrap_or(u64::MAX) % period;
        Some(Self::Every { period, offset })
    }

    /// The first tick strictly after `ms`, or `None` if there is none (the end of time, or a
    /// cron expression that matches no later instant).
    pub(crate) fn next_after(&self, ms: u64) -> Option<u64> {
        match self {
            Self::Every { period, offset } => {
                if ms < *offset {
                    return Some(*offset);
                }
                let k = (ms - offset) / period + 1;
                k.checked_mul(*period)?.checked_add(*offset)
            }
            #[cfg(feature = "cron")]
            Self::Cron(cron) => cron.next_after(ms),
        }
    }

    /// The last tick at or before `ms`, or `None` if there is none.
    pub(crate) fn latest_at_or_before(&self, ms: u64) -> Option<u64> {
        match self {
            Self::Every { period, offset } => {
                (ms >= *offset).then(|| offset + (ms - offset) / period * period)
            }
            #[cfg(feature = "cron")]
            Self::Cron(cron) => cron.latest_at_or_before(ms),
        }
    }
}

/// How a cadence is shown in a [`ScheduleInfo`](crate::ScheduleInfo): `every 300000 ms`,
/// `every 300000 ms, offset 30000 ms`, `cron "0 0 2 * * *" in Europe/Berlin`.
impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every { period, offset: 0 } => write!(f, "every {period} ms"),
            Self::Every { period, offset } => write!(f, "every {period} ms, offset {offset} ms"),
            #[cfg(feature = "cron")]
            Self::Cron(cron) => fmt::Display::fmt(cron, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_ticks_are_aligned_to_the_epoch_plus_the_offset() {
        let every = Cadence::every(Duration::from_millis(100), Duration::from_millis(30)).unwrap();
        assert_eq!(every.next_after(0), Some(30));
        assert_eq!(every.next_after(29), Some(30));
        assert_eq!(every.next_after(30), Some(130));
        assert_eq!(every.next_after(129), Some(130));
        assert_eq!(every.latest_at_or_before(29), None);
        assert_eq!(every.latest_at_or_before(30), Some(30));
        assert_eq!(every.latest_at_or_before(229), Some(130));
        assert_eq!(every.next_after(u64::MAX - 1), None);
    }

    #[test]
    fn a_period_under_a_millisecond_is_refused_and_the_offset_wraps() {
        assert!(Cadence::every(Duration::from_micros(999), Duration::ZERO).is_none());
        let every = Cadence::every(Duration::from_millis(100), Duration::from_millis(250)).unwrap();
        assert!(matches!(
            every,
            Cadence::Every {
                period: 100,
                offset: 50
            }
        ));
        assert_eq!(every.to_string(), "every 100 ms, offset 50 ms");
    }

    proptest::proptest! {
        /// Against a brute-force model: the ticks are exactly the `t` with
        /// `t % period == offset % period`.
        #[test]
        fn period_ticks_match_a_brute_force_model(period in 1u64..500, offset in 0u64..1_000, at in 0u64..5_000) {
            let every = Cadence::every(Duration::from_millis(period), Duration::from_millis(offset)).unwrap();
            let is_tick = |t: u64| t % period == offset % period;
            let next = (at + 1..).find(|&t| is_tick(t));
            let latest = (0..=at).rev().find(|&t| is_tick(t));
            proptest::prop_assert_eq!(every.next_after(at), next);
            proptest::prop_assert_eq!(every.latest_at_or_before(at), latest);
        }
    }
}
