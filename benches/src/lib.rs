//! Code shared by the `background-worker` benches: the runtimes, ids made outside the timed
//! region, a runtime-free poll for futures that complete at their first poll, and the
//! submit-to-completion and shutdown-drain variants that the criterion benches, the alternating
//! `compare` bench and the `instructions` binary (for callgrind) all run.
//!
//! This is a package of its own, not a set of `[[bench]]` targets of the library, so that its
//! build does not get tokio's `test-util` feature from the library's dev-dependencies: with it,
//! `tokio::time::Instant::now()` takes the runtime's clock mutex, which a user's build does not.

pub mod drain;
pub mod redis_server;
pub mod submit;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use background_worker::{TaskStatus, Worker};
use tokio::runtime::Runtime;

/// The multi-thread runtime the criterion benches run on: one worker thread per CPU (tokio's
/// default).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

/// A multi-thread runtime with `threads` worker threads.
pub fn runtime_with(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

/// Runs `body` inside a task spawned on `rt`, so that every variant spawns from a worker thread
/// (as a request handler would), not from the `block_on` thread.
pub fn run_in_task<T, F>(rt: &Runtime, body: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(body).await.expect("bench task panicked") })
}

/// `n` distinct ids with a common prefix, e.g. `job-0000042`.
pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:07}")).collect()
}

/// Polls `future` once with a no-op waker and returns its output; panics if it is not ready.
/// Used for `Worker` queries that are `async` but complete at their first poll, so that no
/// runtime is measured.
#[inline]
pub fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("future was not ready at its first poll"),
    }
}

/// Yields until `worker` reports `count` running tasks.
pub async fn until_running(worker: &Worker, count: usize) {
    while worker.running_task_count().await < count {
        tokio::task::yield_now().await;
    }
}

/// Yields until the task `id` is running.
pub async fn until_started(worker: &Worker, id: &str) {
    while worker.get_task_status(id).await != Some(TaskStatus::Running) {
        tokio::task::yield_now().await;
    }
}

/// A small deterministic PRNG (xorshift64*) for access patterns; no dependency needed.
#[derive(Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (any value; zero is avoided).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next value, uniform enough below `bound` for an access pattern.
    pub fn next_below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % bound
    }
}
