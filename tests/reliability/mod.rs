//! Helpers shared by the reliability suites (`stress.rs`, `races.rs`, `faults.rs`,
//! `flood.rs`). Each suite uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::Duration;

/// `true` when `STRESS` is set to anything but `0` or the empty string: run the long versions.
pub fn stress() -> bool {
    std::env::var_os("STRESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// `bounded` repetitions normally, `long` under `STRESS=1`, and a handful under Miri.
pub fn repeat(bounded: usize, long: usize) -> usize {
    if cfg!(miri) {
        bounded.clamp(1, 3)
    } else if stress() {
        long
    } else {
        bounded
    }
}

/// Marker at the start of every panic message the suites raise on purpose.
pub const INTENDED: &str = "intended-panic";

/// Silences the panics the suites raise on purpose (messages starting with [`INTENDED`], and
/// the non-string payloads `42_i32`, `7_u8` and [`Payload`]); any other panic is reported as usual.
pub fn quiet_intended_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let intended = payload.downcast_ref::<i32>() == Some(&42)
                || payload.downcast_ref::<u8>() == Some(&7)
                || payload.downcast_ref::<Payload>().is_some()
                || payload
                    .downcast_ref::<&str>()
                    .is_some_and(|m| m.starts_with(INTENDED))
                || payload
                    .downcast_ref::<String>()
                    .is_some_and(|m| m.starts_with(INTENDED));
            if !intended {
                default(info);
            }
        }));
    });
}

/// A non-string panic payload.
#[derive(Debug)]
pub struct Payload {
    pub code: u32,
}

/// Counts closures called, bodies alive (from the closure call until the body's future is
/// dropped), and polls of a body that happen after [`Probe::shutdown_returned`] was set.
#[derive(Debug, Default)]
pub struct Probe {
    pub called: AtomicUsize,
    pub alive: AtomicUsize,
    pub polls_after_shutdown: AtomicUsize,
    pub shutdown_returned: AtomicBool,
}

impl Probe {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    pub fn called(&self) -> usize {
        self.called.load(Ordering::SeqCst)
    }

    pub fn polls_after_shutdown(&self) -> usize {
        self.polls_after_shutdown.load(Ordering::SeqCst)
    }

    pub fn mark_shutdown_returned(&self) {
        self.shutdown_returned.store(true, Ordering::SeqCst);
    }

    /// Wraps a body: counts it alive until dropped and flags every poll after shutdown returned.
    /// Call it inside the task's closure.
    pub fn watch<F>(self: &Arc<Self>, body: F) -> Watched
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.called.fetch_add(1, Ordering::SeqCst);
        self.alive.fetch_add(1, Ordering::SeqCst);
        Watched {
            body: Box::pin(body),
            alive: AliveToken(Arc::clone(self)),
        }
    }
}

/// A body under a [`Probe`]'s watch.
pub struct Watched {
    body: Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
    /// Declared after `body`, so it is dropped after it: a body counts as alive until its
    /// destructor has returned too.
    alive: AliveToken,
}

struct AliveToken(Arc<Probe>);

impl Drop for AliveToken {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Future for Watched {
    type Output = anyhow::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let probe = &self.alive.0;
        if probe.shutdown_returned.load(Ordering::SeqCst) {
            probe.polls_after_shutdown.fetch_add(1, Ordering::SeqCst);
        }
        self.body.as_mut().poll(cx)
    }
}

/// A tiny deterministic generator (xorshift64*), so runs are reproducible from their seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    pub fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

/// A multi-thread runtime with `threads` workers and all drivers enabled.
pub fn multi_thread(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("multi-thread runtime")
}

/// A current-thread runtime with all drivers enabled.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime")
}

/// The two runtime flavours, by name, for tests that must pass on both.
pub fn both_flavours() -> [(&'static str, tokio::runtime::Runtime); 2] {
    [
        ("current_thread", current_thread()),
        ("multi_thread", multi_thread(2)),
    ]
}

/// Real-time limit for one test body: a deadlock fails the test instead of hanging CI. Miri
/// interprets some hundred times slower, and has its own deadlock detection.
pub const WATCHDOG: Duration = Duration::from_secs(if cfg!(miri) { 1_800 } else { 60 });

/// Runs `future` under the [`WATCHDOG`], panicking with `what` if it does not finish in time.
pub async fn watchdog<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WATCHDOG, future).await {
        Ok(value) => value,
        Err(_) => panic!("watchdog: {what} did not finish within {WATCHDOG:?} (deadlock?)"),
    }
}

/// Polls `condition` every millisecond (real time) until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let limit = if cfg!(miri) { limit * 50 } else { limit };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lets task bodies that block their thread on purpose go: set by [`Release::release`], and by
/// the guard's drop, so a test that fails (a panic unwinding out of `block_on`) still releases
/// them. Without that, dropping the runtime waits for the blocked worker thread forever and the
/// failure becomes a hang. Declare it after the runtime, so that it is dropped before it.
#[derive(Debug, Default)]
pub struct Release(Arc<AtomicBool>);

impl Release {
    pub fn new() -> Self {
        Self::default()
    }

    /// The flag a blocking body watches (see [`block_until`]).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    pub fn release(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        self.release();
    }
}

/// Blocks the calling thread until `flag` is set, looking every millisecond. Gives up after the
/// [`WATCHDOG`] (returning `false`), so that a blocked thread never outlives a failed test by
/// more than that, even if no [`Release`] guard was dropped.
pub fn block_until(flag: &AtomicBool) -> bool {
    let deadline = std::time::Instant::now() + WATCHDOG;
    while !flag.load(Ordering::SeqCst) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// How long a [`ProcessWatchdog`] waits: longer than the in-runtime [`WATCHDOG`], which fails
/// the test with a better message whenever it can fire.
pub const PROCESS_WATCHDOG: Duration = Duration::from_secs(if cfg!(miri) { 3_600 } else { 150 });

/// A real-time limit on a whole test, the runtime's drop included, kept by a thread of its own.
/// The [`watchdog`] future cannot fire when every worker thread of its runtime is blocked (its
/// timer is driven by them) nor while the runtime's drop waits for a blocked thread; this one
/// can: if the guard is still alive after [`PROCESS_WATCHDOG`], it prints what was running and
/// exits the test process with status 101 (a failure with a message, never a hang). Create it
/// first in the test, so that it is dropped last.
#[derive(Debug)]
pub struct ProcessWatchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a [`ProcessWatchdog`] for the test `what`.
pub fn process_watchdog(what: &str) -> ProcessWatchdog {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let what = what.to_owned();
    let thread = std::thread::Builder::new()
        .name(format!("watchdog: {what}"))
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(PROCESS_WATCHDOG) {
                eprintln!(
                    "process watchdog: {what} still running after {PROCESS_WATCHDOG:?} \
                     (a blocked thread or a deadlock); exiting the test process"
                );
                std::process::exit(101);
            }
        })
        .expect("watchdog thread");
    ProcessWatchdog {
        done: Some(done),
        thread: Some(thread),
    }
}

impl Drop for ProcessWatchdog {
    fn drop(&mut self) {
        drop(self.done.take()); // disconnects: the thread's wait ends at once
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
