//! The settings a mirror was built with, fixed from then on.

use std::time::Duration;

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) namespace: String,
    pub(crate) replica: String,
    pub(crate) lease: Duration,
    pub(crate) retention: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) query_timeout: Duration,
    pub(crate) progress_interval: Duration,
    pub(crate) trim_interval: Duration,
    pub(crate) listen_for_cancels: bool,
}
