//! Helpers shared by the benches: the runtime, ids made outside the timed region, and a
//! runtime-free poll for futures that complete at their first poll.

// Each bench binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use background_worker::{TaskStatus, Worker};
use tokio::runtime::Runtime;

/// The multi-thread runtime every async bench runs on: one worker thread per CPU (tokio's default).
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

/// Runs `body` inside a task spawned on `rt`, so that every variant spawns from a worker thread
/// (as a request handler would), not from the `block_on` thread.
pub(crate) fn run_in_task<T, F>(rt: &Runtime, body: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(body).await.expect("bench task panicked") })
}

/// `n` distinct ids with a common prefix, e.g. `job-0000042`.
pub(crate) fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:07}")).collect()
}

/// Polls `future` once with a no-op waker and returns its output; panics if it is not ready.
/// Used for `Worker` queries that are `async` but complete at their first poll, so that no
/// runtime is measured.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("future was not ready at its first poll"),
    }
}

/// Yields until `worker` reports `count` running tasks.
pub(crate) async fn until_running(worker: &Worker, count: usize) {
    while worker.running_task_count().await < count {
        tokio::task::yield_now().await;
    }
}

/// Yields until the task `id` is running.
pub(crate) async fn until_started(worker: &Worker, id: &str) {
    while worker.get_task_status(id).await != Some(TaskStatus::Running) {
        tokio::task::yield_now().await;
    }
}

/// A small deterministic PRNG (xorshift64*) for access patterns; no dependency needed.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next_below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % bound
    }
}
