//! Schedules: what 10 000 idle schedules cost, and how late a tick's body starts.
//!
//! 1. **Idle cost.** 10 000 schedules with a one-day period (none ticks during the bench) on one
//!    worker, against the hand-written alternative the crate's users write today: one tokio task
//!    per schedule, looping on a `tokio::time::interval`. Measured: live heap bytes per schedule
//!    (a counting global allocator, `stats_alloc`: requested bytes, without the allocator's own
//!    overhead), tokio tasks alive (each sleeping task holds one timer entry), and the time to
//!    set them all up. Medians of five rounds, with min and max.
//! 2. **Tick start delay.** From a tick's scheduled time (wall clock, ms since the epoch) to its
//!    body's first line (`SystemTime::now()` there), for 1 and for 100 schedules of 100 ms on a
//!    2-thread runtime, over 3 s; against the hand-written loop (sleep until the tick's instant,
//!    spawn the body) measured the same way. p50, p99 and max.
//!
//! 3. **Tick start delay with a mirror** (`--features redis`): the same delay when each tick is
//!    a claimed submission through a `RedisMirror` on a real `redis-server` on loopback (started
//!    on a free port, or `BACKGROUND_WORKER_REDIS_PORT`), against the same worker without a
//!    mirror, in the same run. Only the ticks after the namespace's first lease count (before
//!    it, Redis cannot tell whether a tick was claimed and the ticks are skipped).
//!
//! Not a criterion bench: it prints a table. `cargo bench -p background-worker-benches --bench
//! schedule` (add `--features redis` for 3).

use std::alloc::System;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use background_worker::{Overlap, Schedule, Worker};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const IDLE: usize = 10_000;
const DAY: Duration = Duration::from_secs(86_400);

fn live() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// An offset that puts the next daily tick about twelve hours away.
fn far_offset() -> Duration {
    Duration::from_millis((now_ms() + DAY.as_millis() as u64 / 2) % DAY.as_millis() as u64)
}

struct Idle {
    bytes: f64,
    tasks: usize,
    setup: Duration,
}

fn idle_schedules(rt: &tokio::runtime::Runtime) -> Idle {
    rt.block_on(async {
        let before = live();
        let started = Instant::now();
        let worker = Worker::new();
        let schedule = Schedule::every(DAY).offset(far_offset());
        for i in 0..IDLE {
            worker
                .schedule(
                    format!("schedule-{i:05}"),
                    schedule.clone(),
                    |_ctx, _tick| async { Ok(()) },
                )
                .expect("schedule");
        }
        let setup = started.elapsed();
        tokio::time::sleep(Duration::from_millis(50)).await; // the driver sleeps
        let bytes = (live() - before) as f64 / IDLE as f64;
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        worker.shutdown().await;
        drop(worker);
        Idle { bytes, tasks, setup }
    })
}

fn idle_interval_tasks(rt: &tokio::runtime::Runtime) -> Idle {
    rt.block_on(async {
        let before = live();
        let started = Instant::now();
        let stop = tokio_util::sync::CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let first = tokio::time::Instant::now() + DAY / 2;
        for _ in 0..IDLE {
            let stop = stop.clone();
            tracker.spawn(async move {
                let mut interval = tokio::time::interval_at(first, DAY);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        () = stop.cancelled() => return,
                    }
                }
            });
        }
        let setup = started.elapsed();
        tokio::time::sleep(Duration::from_millis(50)).await; // every task sleeps on its timer
        let bytes = (live() - before) as f64 / IDLE as f64;
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        Idle { bytes, tasks, setup }
    })
}

fn median(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

fn idle() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("idle cost of {IDLE} schedules (period one day, none due), median [min, max] of 5 rounds");
    let mut rows: Vec<(&str, Vec<Idle>)> =
        vec![("Worker::schedule", Vec::new()), ("task + interval", Vec::new())];
    for _ in 0..5 {
        rows[0].1.push(idle_schedules(&rt));
        rows[1].1.push(idle_interval_tasks(&rt));
    }
    let mut medians = Vec::new();
    for (name, rounds) in &rows {
        let (bytes, bytes_min, bytes_max) = median(&mut rounds.iter().map(|r| r.bytes).collect::<Vec<_>>());
        let (setup, setup_min, setup_max) = median(
            &mut rounds
                .iter()
                .map(|r| r.setup.as_secs_f64() * 1e6 / IDLE as f64)
                .collect::<Vec<_>>(),
        );
        let tasks = rounds.iter().map(|r| r.tasks).max().unwrap_or(0);
        println!(
            "  {name:<17} {bytes:>7.0} B/schedule [{bytes_min:.0}, {bytes_max:.0}]  \
             {tasks:>5} tasks alive (each one timer)  setup {setup:.2} us/schedule [{setup_min:.2}, {setup_max:.2}]"
        );
        medians.push((bytes, setup));
    }
    println!(
        "  ratio schedule/interval: memory {:.2}, setup {:.2}",
        medians[0].0 / medians[1].0,
        medians[0].1 / medians[1].1
    );
}

/// Delays (ms) from each tick's scheduled time to its body's start, for `schedules` schedules
/// of 100 ms over `run_for`.
fn delays_worker(rt: &tokio::runtime::Runtime, schedules: usize, run_for: Duration) -> Vec<f64> {
    rt.block_on(delays_on(Worker::new(), schedules, run_for))
}

/// [`delays_worker`] on `worker`, inside the runtime.
async fn delays_on(worker: Worker, schedules: usize, run_for: Duration) -> Vec<f64> {
    {
        let delays = Arc::new(Mutex::new(Vec::new()));
        for i in 0..schedules {
            let delays = Arc::clone(&delays);
            let schedule = Schedule::every(Duration::from_millis(100)).overlap(Overlap::Allow);
            worker
                .schedule(format!("s{i}"), schedule, move |_ctx, tick| {
                    let late = SystemTime::now()
                        .duration_since(tick.scheduled_at())
                        .unwrap_or_default();
                    delays.lock().unwrap().push(late.as_secs_f64() * 1e3);
                    async { Ok(()) }
                })
                .expect("schedule");
        }
        tokio::time::sleep(run_for).await;
        worker.shutdown().await;
        let delays = delays.lock().unwrap().clone();
        delays
    }
}

/// The same, hand-written: per schedule a task that sleeps until each tick's instant (from the
/// same epoch-aligned wall-clock ticks) and spawns the body.
fn delays_loop(rt: &tokio::runtime::Runtime, schedules: usize, run_for: Duration) -> Vec<f64> {
    rt.block_on(async {
        let delays = Arc::new(Mutex::new(Vec::new()));
        let end = tokio::time::Instant::now() + run_for;
        let mut loops = Vec::new();
        for _ in 0..schedules {
            let delays = Arc::clone(&delays);
            loops.push(tokio::spawn(async move {
                loop {
                    let now = now_ms();
                    let tick = (now / 100 + 1) * 100;
                    let at = tokio::time::Instant::now() + Duration::from_millis(tick - now);
                    if at > end {
                        return;
                    }
                    tokio::time::sleep_until(at).await;
                    let delays = Arc::clone(&delays);
                    tokio::spawn(async move {
                        let late = SystemTime::now()
                            .duration_since(UNIX_EPOCH + Duration::from_millis(tick))
                            .unwrap_or_default();
                        delays.lock().unwrap().push(late.as_secs_f64() * 1e3);
                    });
                }
            }));
        }
        for handle in loops {
            handle.await.expect("loop");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let delays = delays.lock().unwrap().clone();
        delays
    })
}

fn percentiles(mut delays: Vec<f64>) -> (usize, f64, f64, f64) {
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    (delays.len(), at(0.5), at(0.99), delays[delays.len() - 1])
}

fn delay() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("tick start delay, scheduled time to body start (ms), 100 ms period, 3 s, 2 worker threads");
    for schedules in [1, 100] {
        let run_for = Duration::from_secs(3);
        let ours = percentiles(delays_worker(&rt, schedules, run_for));
        let theirs = percentiles(delays_loop(&rt, schedules, run_for));
        for (name, (n, p50, p99, max)) in [("Worker::schedule", ours), ("sleep_until loop", theirs)] {
            println!("  {schedules:>3} schedules  {name:<17} n={n:>5}  p50 {p50:>6.3}  p99 {p99:>6.3}  max {max:>7.3}");
        }
        println!(
            "  {schedules:>3} schedules  ratio p50 {:.2}, p99 {:.2}",
            ours.1 / theirs.1,
            ours.2 / theirs.2
        );
    }
}

#[cfg(feature = "redis")]
mod mirrored {
    //! Part 3: the tick start delay with a `RedisMirror`.

    use std::time::Duration;

    use background_worker::{RedisMirror, Worker};
    use background_worker_benches::redis_server::redis;

    const LEASE: Duration = Duration::from_secs(1);

    pub(super) fn delay() {
        let Some((_server, port)) = redis() else {
            println!("tick start delay with a mirror: skipped, no redis-server");
            return;
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("redis://127.0.0.1:{port}");
        println!("tick start delay with a RedisMirror (redis-server on loopback), 100 ms period, 3 s, 2 worker threads");
        for schedules in [1, 100] {
            let run_for = Duration::from_secs(3);
            let namespace = format!("bench-schedule-{}-{schedules}", std::process::id());
            let mirrored = rt.block_on(async {
                let mirror = RedisMirror::builder(url.as_str())
                    .namespace(namespace.as_str())
                    .replica("bench")
                    .lease(LEASE)
                    .build()
                    .expect("mirror");
                let worker = Worker::builder().observer(mirror.observer()).build();
                mirror.start(&worker).expect("start the mirror");
                // The namespace is new: its first lease claims nothing; let it pass.
                tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
                let delays = super::delays_on(worker, schedules, run_for).await;
                mirror
                    .close(Duration::from_secs(5))
                    .await
                    .expect("close the mirror");
                delays
            });
            let local = rt.block_on(super::delays_on(Worker::new(), schedules, run_for));
            let ours = super::percentiles(mirrored);
            let theirs = super::percentiles(local);
            for (name, (n, p50, p99, max)) in [("with a mirror", ours), ("without", theirs)] {
                println!("  {schedules:>3} schedules  {name:<17} n={n:>5}  p50 {p50:>6.3}  p99 {p99:>6.3}  max {max:>7.3}");
            }
            println!(
                "  {schedules:>3} schedules  ratio p50 {:.2}, p99 {:.2}",
                ours.1 / theirs.1,
                ours.2 / theirs.2
            );
        }
    }
}

fn main() {
    // `cargo bench -- FILTER` passes a filter: run only if it matches "schedule".
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if !args.is_empty() && !args.iter().any(|arg| "schedule".contains(arg.as_str())) {
        return;
    }
    idle();
    delay();
    #[cfg(feature = "redis")]
    mirrored::delay();
}
