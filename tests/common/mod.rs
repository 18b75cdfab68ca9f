//! Helpers shared by the behaviour suites in `tests/`.
//!
//! Every suite runs on a current-thread runtime with paused time
//! (`#[tokio::test(start_paused = true)]`): timers fire in order as soon as every task is idle, so
//! a "10 second" task costs no real time and orderings are deterministic.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use background_worker::Worker;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// `n` whole seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Sleeps `n` whole seconds of (paused) time.
pub async fn sleep_secs(n: u64) {
    tokio::time::sleep(secs(n)).await;
}

/// Lets a handful of spawned tasks run until they wait on something (a timer, a token, a permit)
/// without moving the clock. The scheduler polls a bounded number of tasks per yield, so for
/// hundreds of tasks sleep a whole second instead.
pub async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// Awaits `future`, failing the test if it takes more than `limit` seconds of (paused) time, so
/// a bug that would make it hang fails fast instead.
pub async fn within<T>(limit: u64, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(secs(limit), future).await {
        Ok(value) => value,
        Err(_) => panic!("did not finish within {limit} s"),
    }
}

/// A worker with the given cancel and shutdown timeouts, in seconds.
pub fn worker_with_timeouts(cancel: u64, shutdown: u64) -> Worker {
    Worker::builder()
        .cancel_timeout(secs(cancel))
        .shutdown_timeout(secs(shutdown))
        .build()
}

/// A body that never finishes on its own (it waits forever at an `.await`).
pub fn forever() -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    std::future::pending()
}

/// A shared boolean a task body sets, so a test can tell whether (or how far) it ran.
#[derive(Debug, Clone, Default)]
pub struct Flag(Arc<AtomicBool>);

impl Flag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared counter task bodies bump.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counts bodies running at the same time and remembers the peak.
#[derive(Debug, Clone, Default)]
pub struct Gauge {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Gauge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks one more body running until the returned guard is dropped.
    pub fn enter(&self) -> GaugeGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(Arc::clone(&self.now))
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Held by a running body; see [`Gauge::enter`].
#[derive(Debug)]
pub struct GaugeGuard(Arc<AtomicUsize>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One captured log event: its level and its own fields (not its span's), as text.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub level: Level,
    pub fields: Vec<(String, String)>,
}

impl LoggedEvent {
    /// The value of the event's own field `name`, as `Display` / `Debug` rendered it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Every event logged on this thread while the guard from [`capture_logs`] lives.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<LoggedEvent>>>);

impl Logs {
    pub fn events(&self) -> Vec<LoggedEvent> {
        self.0.lock().unwrap().clone()
    }
}

struct Capture(Logs);

struct FieldsVisitor<'a>(&'a mut Vec<(String, String)>);

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut FieldsVisitor(&mut fields));
        let logged = LoggedEvent {
            level: *event.metadata().level(),
            fields,
        };
        (self.0).0.lock().unwrap().push(logged);
    }
}

/// Captures every log event of this thread (the whole current-thread runtime of a
/// `#[tokio::test]`) until the returned guard is dropped.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::registry().with(Capture(logs.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}
