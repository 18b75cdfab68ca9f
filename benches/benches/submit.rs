//! Submit to completion: N trivial tasks until all are finished, side by side with tokio's own
//! primitives. Each variant spawns from a task on the multi-thread runtime; ids are made outside
//! the timed region and every baseline task takes its id (as the `Worker` does) and drops it.
//! The variants are in `src/submit.rs`, shared with the `compare` bench and the `instructions`
//! binary.

use std::time::Duration;

use background_worker_benches::submit::{join_set, spawn, tracker, worker};
use background_worker_benches::{ids, run_in_task, runtime};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

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
