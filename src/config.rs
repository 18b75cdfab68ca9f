//! Settings fixed when a worker is built.

use std::sync::Arc;
use std::time::Duration;

use crate::observe::Observers;

/// The default for both [`WorkerBuilder::cancel_timeout`](crate::WorkerBuilder::cancel_timeout)
/// and [`WorkerBuilder::shutdown_timeout`](crate::WorkerBuilder::shutdown_timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a [`WorkerBuilder`](crate::WorkerBuilder) sets.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_concurrent: Option<usize>,
    pub(crate) cancel_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_tracked: Option<usize>,
    pub(crate) retention: Limits,
    pub(crate) name: Arc<str>,
    pub(crate) observers: Observers,
}

/// When finished entries are removed on their own.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    pub(crate) ttl: Option<Duration>,
    pub(crate) max_finished: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_concurrent: None,
            cancel_timeout: DEFAULT_TIMEOUT,
            shutdown_timeout: DEFAULT_TIMEOUT,
            max_tracked: None,
            retention: Limits::default(),
            name: Arc::from("default"),
            observers: Observers::default(),
        }
    }
}
