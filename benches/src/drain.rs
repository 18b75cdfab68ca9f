//! Shutdown drain of running cooperative tasks (they return as soon as their token is cancelled):
//! `Worker` (`submit_with_context` bodies awaiting `ctx.cancelled()`, and `submit` bodies dropped
//! at the token) vs `TaskTracker` cancel + `close` + `wait` vs `JoinSet` cancel + drain.
//!
//! Each function starts its tasks from the ids, waits until all of them are running, and returns
//! the time of the drain alone.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::Worker;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::until_running;

/// `submit_with_context` bodies that await `ctx.cancelled()`; `worker.shutdown()` is timed.
pub async fn worker_context(names: Vec<String>) -> Duration {
    let worker = Worker::new();
    let n = names.len();
    for id in names {
        worker
            .submit_with_context(id, |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await
            .expect("submit");
    }
    until_running(&worker, n).await;
    let start = Instant::now();
    let report = worker.shutdown().await;
    let elapsed = start.elapsed();
    assert_eq!(report.cancelled(), n);
    elapsed
}

/// `submit` bodies that never finish (`pending()`), dropped at their token; `worker.shutdown()`
/// is timed.
pub async fn worker_submit(names: Vec<String>) -> Duration {
    let worker = Worker::new();
    let n = names.len();
    for id in names {
        worker.submit(id, std::future::pending).await.expect("submit");
    }
    until_running(&worker, n).await;
    let start = Instant::now();
    let report = worker.shutdown().await;
    let elapsed = start.elapsed();
    assert_eq!(report.cancelled(), n);
    elapsed
}

/// A `TaskTracker` of tasks awaiting a child token; the parent's `cancel` + `close` + `wait` is
/// timed.
pub async fn task_tracker(names: Vec<String>) -> Duration {
    let tracker = TaskTracker::new();
    let root = CancellationToken::new();
    let started = Arc::new(AtomicUsize::new(0));
    let n = names.len();
    for id in names {
        let token = root.child_token();
        let started = Arc::clone(&started);
        tracker.spawn(async move {
            started.fetch_add(1, Ordering::Release);
            token.cancelled().await;
            drop(black_box(id));
        });
    }
    while started.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
    let start = Instant::now();
    root.cancel();
    tracker.close();
    tracker.wait().await;
    start.elapsed()
}

/// A `JoinSet` of tasks awaiting a child token; the parent's `cancel` + draining with
/// `join_next` is timed.
pub async fn join_set(names: Vec<String>) -> Duration {
    let mut set = JoinSet::new();
    let root = CancellationToken::new();
    let started = Arc::new(AtomicUsize::new(0));
    let n = names.len();
    for id in names {
        let token = root.child_token();
        let started = Arc::clone(&started);
        set.spawn(async move {
            started.fetch_add(1, Ordering::Release);
            token.cancelled().await;
            drop(black_box(id));
        });
    }
    while started.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
    let start = Instant::now();
    root.cancel();
    while let Some(joined) = set.join_next().await {
        joined.expect("join");
    }
    start.elapsed()
}

/// The drain time of one variant, once its tasks are set up.
pub type Fut = Pin<Box<dyn Future<Output = Duration> + Send>>;

/// A named variant: sets up its tasks from the ids and times the drain.
pub type Variant = (&'static str, fn(Vec<String>) -> Fut);

/// The cooperative drain variants, `TaskTracker` third (as in the criterion group).
pub const VARIANTS: [Variant; 4] = [
    ("worker_context", |names| Box::pin(worker_context(names))),
    ("worker_submit", |names| Box::pin(worker_submit(names))),
    ("task_tracker_token", |names| Box::pin(task_tracker(names))),
    ("join_set_token", |names| Box::pin(join_set(names))),
];
