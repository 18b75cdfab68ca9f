//! Progress that a running task reports about itself.

/// How far along a task is, as reported by the task through
/// [`TaskContext::set_progress`](crate::TaskContext::set_progress).
///
/// A progress is a fraction, a counter, or both, with an optional short message. A plain `f64`
/// converts into a fraction, and a `(done, total)` pair into a counter (whose fraction is
/// `done / total`).
///
/// Feature `serde`: `Serialize` and `Deserialize`, field by field.
///
/// # Examples
///
/// ```
/// use background_worker::Progress;
///
/// let half: Progress = 0.5.into();
/// assert_eq!(half.fraction, Some(0.5));
///
/// let rows = Progress::counter(250, 1_000).with_message("importing rows");
/// assert_eq!(rows.fraction, Some(0.25));
/// assert_eq!(rows.done, Some(250));
/// assert_eq!(rows.message.as_deref(), Some("importing rows"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Progress {
    /// Completed share of the work, from `0.0` to `1.0` (values outside, and NaN, are clamped).
    pub fraction: Option<f64>,
    /// Units of work done, for a counter.
    pub done: Option<u64>,
    /// Units of work in total, for a counter, when known.
    pub total: Option<u64>,
    /// A short human-readable note ("uploading part 3 of 7").
    pub message: Option<String>,
}

impl Progress {
    /// A fraction of the work done, clamped to `0.0..=1.0` (NaN becomes `0.0`).
    #[must_use]
    pub fn fraction(fraction: f64) -> Self {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        Self {
            fraction: Some(fraction),
            ..Self::default()
        }
    }

    /// `done` units out of `total`; the fraction is `done / total` (none when `total` is 0).
    #[must_use]
    pub fn counter(done: u64, total: u64) -> Self {
        let fraction = (total > 0).then(|| (done as f64 / total as f64).clamp(0.0, 1.0));
        Self {
            fraction,
            done: Some(done),
            total: Some(total),
            message: None,
        }
    }

    /// A message alone, with no measure of how far along the task is.
    #[must_use]
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// The same progress with a message attached.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl From<f64> for Progress {
    fn from(fraction: f64) -> Self {
        Self::fraction(fraction)
    }
}

impl From<(u64, u64)> for Progress {
    fn from((done, total): (u64, u64)) -> Self {
        Self::counter(done, total)
    }
}
