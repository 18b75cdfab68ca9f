//! A run's tick: the schedule's name and the tick's scheduled time, the run's id made from them,
//! and the tick's jitter.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The tick a scheduled run belongs to: which schedule, and the time the tick was due (before
/// any jitter). A schedule's body gets it beside its [`TaskContext`](crate::TaskContext), see
/// [`Worker::schedule`](crate::Worker::schedule).
///
/// A run's task id is made from both: `NAME@MS`, the schedule's name, an `@`, and the tick's
/// time in whole milliseconds since the Unix epoch, in decimal without leading zeros
/// ([`run_id`](Self::run_id)); [`from_run_id`](Self::from_run_id) reads it back.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use background_worker::Tick;
///
/// let tick = Tick::from_run_id("cleanup@1700000000000").unwrap();
/// assert_eq!(tick.schedule(), "cleanup");
/// assert_eq!(tick.scheduled_at_ms(), 1_700_000_000_000);
/// assert_eq!(tick.scheduled_at(), UNIX_EPOCH + Duration::from_millis(1_700_000_000_000));
/// assert_eq!(tick.run_id(), "cleanup@1700000000000");
///
/// assert!(Tick::from_run_id("cleanup").is_none());
/// assert!(Tick::from_run_id("cleanup@0170").is_none()); // not the form run ids have
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tick {
    schedule: Arc<str>,
    at: u64,
    token: Option<u64>,
}

impl Tick {
    pub(crate) fn new(schedule: Arc<str>, at: u64) -> Self {
        Self {
            schedule,
            at,
            token: None,
        }
    }

    /// This tick with the fencing token of its claim.
    pub(crate) fn with_token(mut self, token: u64) -> Self {
        self.token = Some(token);
        self
    }

    /// The fencing token of this tick's claim, when the worker's ticks are claimed across a
    /// cluster (a started `RedisMirror`, feature `redis`): the value of the run's
    /// `FencingToken`, greater than the token of every earlier claim in the mirror's namespace,
    /// to hand along with the run's writes to other systems. `None` for a tick that ran
    /// without a claim (a worker without a mirror), and for a tick read back by
    /// [`from_run_id`](Self::from_run_id).
    ///
    /// # Examples
    ///
    /// ```
    /// use background_worker::Tick;
    ///
    /// let tick = Tick::from_run_id("cleanup@1700000000000").unwrap();
    /// assert_eq!(tick.fencing_token(), None);
    /// ```
    #[must_use]
    pub fn fencing_token(&self) -> Option<u64> {
        self.token
    }

    /// The schedule's name.
    #[must_use]
    pub fn schedule(&self) -> &str {
        &self.schedule
    }

    /// When the tick was due (wall clock), before any jitter.
    #[must_use]
    pub fn scheduled_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.at)
    }

    /// When the tick was due, in milliseconds since the Unix epoch.
    #[must_use]
    pub fn scheduled_at_ms(&self) -> u64 {
        self.at
    }

    /// The id of this tick's run: `NAME@MS`.
    #[must_use]
    pub fn run_id(&self) -> String {
        run_id(&self.schedule, self.at)
    }

    /// Reads a run id of the form `NAME@MS` back into its tick; `None` if `id` is not of that
    /// form (no `@`, an empty name, or a time that is not a decimal `u64` without leading
    /// zeros).
    ///
    /// Any task id of that form reads as a tick, whether or not a schedule submitted it.
    #[must_use]
    pub fn from_run_id(id: &str) -> Option<Self> {
        let (name, at) = parse_run_id(id)?;
        Some(Self::new(Arc::from(name), at))
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.schedule, self.at)
    }
}

/// `NAME@MS`.
pub(crate) fn run_id(name: &str, at: u64) -> String {
    format!("{name}@{at}")
}

/// The name and the time of a run id, if it has the form [`run_id`] makes.
pub(crate) fn parse_run_id(id: &str) -> Option<(&str, u64)> {
    let (name, at) = id.rsplit_once('@')?;
    let canonical =
        !at.is_empty() && at.bytes().all(|b| b.is_ascii_digit()) && (at == "0" || !at.starts_with('0'));
    if name.is_empty() || name.contains('@') || !canonical {
        return None;
    }
    Some((name, at.parse().ok()?))
}

/// The jitter of a tick, in `0..=bound` milliseconds: a hash of the schedule's name and the
/// tick's time, so that every process computes the same delay for the same tick, with no random
/// number generator. `splitmix64(fnv1a64(name) ^ tick) % (bound + 1)`.
pub(crate) fn jitter(name: &str, tick: u64, bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = (hash ^ tick).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    match bound.checked_add(1) {
        Some(modulus) => z % modulus,
        None => z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_read_back() {
        assert_eq!(parse_run_id("a@0"), Some(("a", 0)));
        assert_eq!(parse_run_id("a b@12"), Some(("a b", 12)));
        assert_eq!(parse_run_id("@12"), None);
        assert_eq!(parse_run_id("a@"), None);
        assert_eq!(parse_run_id("a@012"), None);
        assert_eq!(parse_run_id("a@+12"), None);
        assert_eq!(parse_run_id("a@b@12"), None);
        assert_eq!(parse_run_id("a@99999999999999999999"), None);
        assert_eq!(parse_run_id(&run_id("x", u64::MAX)), Some(("x", u64::MAX)));
    }

    #[test]
    fn jitter_stays_within_its_bound_and_depends_on_name_and_tick() {
        assert_eq!(jitter("a", 5, 0), 0);
        let values: Vec<u64> = (0..1000).map(|tick| jitter("a", tick, 99)).collect();
        assert!(values.iter().all(|&j| j <= 99));
        // Spread over the range, not stuck at one value.
        assert!(values.iter().filter(|&&j| j < 50).count() > 300);
        assert!(values.iter().filter(|&&j| j >= 50).count() > 300);
        assert_eq!(jitter("a", 7, 99), jitter("a", 7, 99));
        assert_ne!(
            (0..10).map(|t| jitter("a", t, 1_000_000)).collect::<Vec<_>>(),
            (0..10).map(|t| jitter("b", t, 1_000_000)).collect::<Vec<_>>()
        );
        let _ = jitter("a", 1, u64::MAX);
    }
}
