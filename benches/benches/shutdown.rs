//! Shutdown drain, side by side with tokio's own primitives:
//!
//! - 10k running cooperative tasks (they return as soon as their token is cancelled): `Worker`
//!   (`submit_with_context` bodies awaiting `ctx.cancelled()`, and `submit` bodies dropped at the
//!   token) vs `TaskTracker` cancel + wait vs `JoinSet` cancel + drain;
//! - 1k running tasks that ignore cancellation, with a 50 ms shutdown timeout: the drain should
//!   take about one timeout, not a thousand. The baseline is a `JoinSet` that waits 50 ms and then
//!   aborts what is left.
//!
//! The tasks are started (and seen running) outside the timed region; only the drain is timed.
//! The cooperative variants are in `src/drain.rs`, shared with the `compare` bench.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::Worker;
use background_worker_benches::drain::{self, Variant};
use background_worker_benches::{ids, run_in_task, runtime, until_running};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const COOPERATIVE: usize = 10_000;
const STUBBORN: usize = 1_000;
const TIMEOUT: Duration = Duration::from_millis(50);

async fn worker_stubborn(names: Vec<String>) -> Duration {
    let worker = Worker::builder().shutdown_timeout(TIMEOUT).build();
    let n = names.len();
    for id in names {
        worker
            .submit_with_context(id, |_ctx| async {
                tokio::time::sleep(Duration::from_secs(3600)).await; // ignores its token
                Ok(())
            })
            .await
            .expect("submit");
    }
    until_running(&worker, n).await;
    let start = Instant::now();
    let report = worker.shutdown().await;
    let elapsed = start.elapsed();
    assert_eq!(report.aborted(), n);
    elapsed
}

async fn join_set_stubborn(names: Vec<String>) -> Duration {
    let mut set = JoinSet::new();
    let root = CancellationToken::new();
    let started = Arc::new(AtomicUsize::new(0));
    let n = names.len();
    for id in names {
        let _token = root.child_token(); // held and ignored
        let started = Arc::clone(&started);
        set.spawn(async move {
            started.fetch_add(1, Ordering::Release);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(black_box((id, _token)));
        });
    }
    while started.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
    let start = Instant::now();
    root.cancel();
    let drained = tokio::time::timeout(TIMEOUT, async { while set.join_next().await.is_some() {} }).await;
    assert!(drained.is_err(), "stubborn tasks finished on their own");
    set.abort_all();
    while set.join_next().await.is_some() {}
    start.elapsed()
}

fn shutdown(c: &mut Criterion) {
    let rt = runtime();

    let mut group = c.benchmark_group("shutdown_drain");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(COOPERATIVE as u64));
    let names = ids("task", COOPERATIVE);
    for (name, variant) in drain::VARIANTS {
        group.bench_function(BenchmarkId::new(name, COOPERATIVE), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_in_task(&rt, variant(names.clone()))).sum());
        });
    }
    group.finish();

    let stubborn: [Variant; 2] = [
        ("worker_context", |names| Box::pin(worker_stubborn(names))),
        ("join_set_timeout_abort", |names| {
            Box::pin(join_set_stubborn(names))
        }),
    ];
    let mut group = c.benchmark_group("shutdown_stubborn_50ms");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    let names = ids("task", STUBBORN);
    for (name, variant) in stubborn {
        group.bench_function(BenchmarkId::new(name, STUBBORN), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_in_task(&rt, variant(names.clone()))).sum());
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    shutdown(&mut criterion);
    criterion.final_summary();
}
