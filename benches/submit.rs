//! Submit to completion: N trivial tasks until all are finished, side by side with tokio's own
//! primitives. Each variant spawns from a task on the multi-thread runtime; ids are made outside
//! the timed region and every baseline task takes its id (as the `Worker` does) and drops it.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use background_worker::Worker;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use common::{ids, run_in_task, runtime};

/// Submits every id, then waits for each by name.
async fn worker(ids: Vec<String>, owned: Vec<String>) -> Duration {
    let worker = Worker::new();
    let start = Instant::now();
    for id in owned {
        worker.submit(id, || async { Ok(()) }).await.expect("submit");
    }
    for id in &ids {
        black_box(worker.wait(id).await);
    }
    let elapsed = start.elapsed();
    drop(worker); // the finished entries are freed outside the timed region
    elapsed
}

/// `tokio::spawn`, then awaits every `JoinHandle`.
async fn spawn(owned: Vec<String>) -> Duration {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(owned.len());
    for id in owned {
        handles.push(tokio::spawn(async move { drop(black_box(id)) }));
    }
    for handle in handles {
        handle.await.expect("join");
    }
    start.elapsed()
}

/// A `JoinSet`, drained with `join_next`.
async fn join_set(owned: Vec<String>) -> Duration {
    let start = Instant::now();
    let mut set = JoinSet::new();
    for id in owned {
        set.spawn(async move { drop(black_box(id)) });
    }
    while let Some(joined) = set.join_next().await {
        joined.expect("join");
    }
    start.elapsed()
}

/// A `TaskTracker` with a child `CancellationToken` per task, the body raced against its token
/// (what `Worker::submit` does), then `close` + `wait`.
async fn tracker(owned: Vec<String>) -> Duration {
    let start = Instant::now();
    let tracker = TaskTracker::new();
    let root = CancellationToken::new();
    for id in owned {
        let token = root.child_token();
        tracker.spawn(async move {
            tokio::select! {
                biased;
                () = token.cancelled() => {}
                () = async { drop(black_box(id)) } => {}
            }
        });
    }
    tracker.close();
    tracker.wait().await;
    start.elapsed()
}

fn submit_to_completion(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("submit_to_completion");
    for n in [1_000usize, 10_000, 100_000] {
        if n >= 100_000 {
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(4));
        } else {
            group
                .sampling_mode(SamplingMode::Auto)
                .sample_size(20)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
        }
        group.throughput(Throughput::Elements(n as u64));
        let names = ids("job", n);

        group.bench_function(BenchmarkId::new("worker", n), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run_in_task(&rt, worker(names.clone(), names.clone())))
                    .sum()
            });
        });
        group.bench_function(BenchmarkId::new("spawn_join_handles", n), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_in_task(&rt, spawn(names.clone()))).sum());
        });
        group.bench_function(BenchmarkId::new("join_set", n), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run_in_task(&rt, join_set(names.clone())))
                    .sum()
            });
        });
        group.bench_function(BenchmarkId::new("task_tracker_token", n), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_in_task(&rt, tracker(names.clone()))).sum());
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    submit_to_completion(&mut criterion);
    criterion.final_summary();
}
