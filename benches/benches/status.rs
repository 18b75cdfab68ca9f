//! Status lookup with 100k tracked entries, next to a bare `DashMap<String, u8>` holding the same
//! ids with the same access pattern: one hot id, random ids, and both again while another thread
//! churns (submits batches, waits for them and cleans up finished entries).
//!
//! `get_task_status` is `async` but completes at its first poll; it is polled once with a no-op
//! waker, so no runtime is measured. The 100k entries belong to tasks that never finish, so the
//! churning cleanup keeps them (it still has to scan them, under each shard's write lock).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use background_worker::Worker;
use criterion::Criterion;
use dashmap::DashMap;

use background_worker_benches::{ids, now, runtime, until_running, XorShift};

const ENTRIES: usize = 100_000;
const CHURN_BATCH: usize = 100;
/// Length of the precomputed random access sequence (a power of two).
const ORDER_LEN: usize = 1 << 20;

/// Another thread that keeps submitting, finishing and cleaning up tasks until dropped.
struct Churn {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Churn {
    fn worker(worker: &Worker) -> Self {
        let worker = worker.clone();
        Self::start(move |stop| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("churn runtime");
            rt.block_on(async {
                let mut rounds = 0u64;
                let mut next = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let batch = ids(&format!("churn-{next}"), CHURN_BATCH);
                    next += 1;
                    for id in &batch {
                        worker
                            .submit(id.as_str(), || async { Ok(()) })
                            .await
                            .expect("submit");
                    }
                    for id in &batch {
                        worker.wait(id).await;
                    }
                    worker.cleanup_finished_tasks().await;
                    rounds += 1;
                }
                rounds
            })
        })
    }

    fn map(map: &Arc<DashMap<String, u8>>) -> Self {
        let map = Arc::clone(map);
        Self::start(move |stop| {
            let mut rounds = 0u64;
            let mut next = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for id in ids(&format!("churn-{next}"), CHURN_BATCH) {
                    map.insert(id, 1);
                }
                next += 1;
                map.retain(|_, done| *done == 0);
                rounds += 1;
            }
            rounds
        })
    }

    fn start(body: impl FnOnce(Arc<AtomicBool>) -> u64 + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || body(stop)
        });
        // Let it get going before anything is measured.
        std::thread::sleep(Duration::from_millis(50));
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let rounds = thread.join().expect("churn thread");
            eprintln!("  (churn thread ran {rounds} rounds of {CHURN_BATCH} tasks)");
        }
    }
}

fn status_lookup(c: &mut Criterion) {
    let rt = runtime();
    let names = ids("task", ENTRIES);
    let worker = Worker::new();
    rt.block_on(async {
        for id in &names {
            worker
                .submit(id.as_str(), std::future::pending)
                .await
                .expect("submit");
        }
        until_running(&worker, ENTRIES).await;
    });
    let map: Arc<DashMap<String, u8>> = Arc::new(names.iter().map(|id| (id.clone(), 0)).collect());

    let mut rng = XorShift::new(0x5eed);
    let order: Vec<u32> = (0..ORDER_LEN).map(|_| rng.next_below(ENTRIES) as u32).collect();
    let hot = names[ENTRIES / 2].as_str();

    for churn in [false, true] {
        let name = if churn {
            "status_lookup_100k_churn"
        } else {
            "status_lookup_100k"
        };
        let mut group = c.benchmark_group(name);
        group
            .sample_size(50)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        {
            let _churn = churn.then(|| Churn::worker(&worker));
            group.bench_function("worker/hot", |b| {
                b.iter(|| now(worker.get_task_status(black_box(hot))));
            });
            group.bench_function("worker/random", |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        let id = names[order[i & (ORDER_LEN - 1)] as usize].as_str();
                        black_box(now(worker.get_task_status(black_box(id))));
                    }
                    start.elapsed()
                });
            });
        }
        {
            let _churn = churn.then(|| Churn::map(&map));
            group.bench_function("dashmap/hot", |b| {
                b.iter(|| map.get(black_box(hot)).map(|entry| *entry));
            });
            group.bench_function("dashmap/random", |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        let id = names[order[i & (ORDER_LEN - 1)] as usize].as_str();
                        black_box(map.get(black_box(id)).map(|entry| *entry));
                    }
                    start.elapsed()
                });
            });
        }
        group.finish();
    }
    rt.block_on(worker.shutdown());
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    status_lookup(&mut criterion);
    criterion.final_summary();
}
