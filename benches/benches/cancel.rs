//! Cancel latency of one running cooperative task: from the call to the task being finished.
//!
//! `Worker::cancel` (a `submit_with_context` body awaiting `ctx.cancelled()`, and a `submit` body
//! dropped at its token) vs a bare `tokio::spawn` with a `CancellationToken` (`cancel` + await the
//! handle) vs `JoinHandle::abort` + await. Each task is spawned and seen running outside the
//! timed region; only the cancel is timed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::{TaskStatus, Worker};
use criterion::Criterion;
use tokio_util::sync::CancellationToken;

use background_worker_benches::{ids, run_in_task, runtime, until_started};

/// Entries are cleaned up (outside the timed region) every this many cancels.
const CLEANUP_EVERY: usize = 1024;

async fn worker_cancel(iters: u64, context: bool) -> Duration {
    let worker = Worker::new();
    let names = ids("task", CLEANUP_EVERY);
    let mut total = Duration::ZERO;
    for i in 0..iters as usize {
        let id = &names[i % CLEANUP_EVERY];
        if i % CLEANUP_EVERY == 0 {
            worker.cleanup_finished_tasks().await;
        }
        if context {
            worker
                .submit_with_context(id.as_str(), |ctx| async move {
                    ctx.cancelled().await;
                    Ok(())
                })
                .await
                .expect("submit");
        } else {
            worker
                .submit(id.as_str(), std::future::pending)
                .await
                .expect("submit");
        }
        until_started(&worker, id).await;
        let start = Instant::now();
        let status = worker.cancel(id).await;
        total += start.elapsed();
        assert_eq!(status, Ok(TaskStatus::Cancelled));
    }
    total
}

/// Spawns a task that sets `started` and then runs `body`; yields until it started.
async fn spawn_started<F>(body: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started);
    let handle = tokio::spawn(async move {
        flag.store(true, Ordering::Release);
        body.await;
    });
    while !started.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
    handle
}

async fn token_cancel(iters: u64) -> Duration {
    let root = CancellationToken::new();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let token = root.child_token();
        let child = token.clone();
        let handle = spawn_started(async move { child.cancelled().await }).await;
        let start = Instant::now();
        token.cancel();
        handle.await.expect("join");
        total += start.elapsed();
    }
    total
}

async fn abort(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let handle = spawn_started(std::future::pending()).await;
        let start = Instant::now();
        handle.abort();
        assert!(handle.await.is_err_and(|error| error.is_cancelled()));
        total += start.elapsed();
    }
    total
}

fn cancel_latency(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("cancel_latency");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("worker_context", |b| {
        b.iter_custom(|iters| run_in_task(&rt, worker_cancel(iters, true)));
    });
    group.bench_function("worker_submit", |b| {
        b.iter_custom(|iters| run_in_task(&rt, worker_cancel(iters, false)));
    });
    group.bench_function("spawn_token", |b| {
        b.iter_custom(|iters| run_in_task(&rt, token_cancel(iters)));
    });
    group.bench_function("spawn_abort", |b| {
        b.iter_custom(|iters| run_in_task(&rt, abort(iters)));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    cancel_latency(&mut criterion);
    criterion.final_summary();
}
