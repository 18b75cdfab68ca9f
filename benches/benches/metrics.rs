//! What the `metrics` feature costs on the hot path: submit-to-completion of N trivial tasks
//! (`submit` each id, then `wait` each id), on three workers in the same run, alternating:
//!
//! - `off`: built with `metrics(false)`. No observer, so every transition takes the path of a
//!   build without the feature (`build` checks the flag once; nothing per task differs).
//! - `empty_observer`: `metrics(false)` plus an observer that does nothing: what the transition
//!   hook itself costs, whoever observes (the metrics observer and the Redis mirror are built on
//!   it).
//! - `no_recorder`: the feature's default, with no recorder installed: the metrics observer is
//!   called on every transition, and its handles are no-ops.
//! - `prometheus`: the same with a metrics-exporter-prometheus recorder (the worker is built
//!   under it with `metrics::with_local_recorder`, so its handles are the recorder's; upkeep
//!   and a render run between the timed runs).
//!
//! Each round runs every variant once, the first one rotating; one warm-up round is not
//! counted. It prints the medians, min, max, the ratio of the medians to `off`, the median and
//! range of the per-round ratios, and the added cost per task.
//!
//! ```sh
//! cargo bench -p background-worker-benches --bench metrics --features metrics
//! ROUNDS=21 N=100000 THREADS=2 cargo bench -p background-worker-benches --bench metrics --features metrics
//! ```
//!
//! Settings from the environment: `ROUNDS` (default 15), `N` (tasks per run, default 10000),
//! `THREADS` (runtime worker threads, comma-separated, default `1,2`).

use std::time::Duration;

use background_worker::{Transition, Worker};
use background_worker_benches::submit::on_worker;
use background_worker_benches::{ids, run_in_task, runtime_with};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

const VARIANTS: [&str; 4] = ["off", "empty_observer", "no_recorder", "prometheus"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |value| {
        value
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: expected a number"))
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn build(variant: &str, recorder: &PrometheusRecorder) -> Worker {
    match variant {
        "off" => Worker::builder().metrics(false).build(),
        "empty_observer" => Worker::builder()
            .metrics(false)
            .on_transition(|transition: &Transition<'_>| {
                std::hint::black_box(transition);
            })
            .build(),
        "no_recorder" => Worker::new(),
        _ => metrics::with_local_recorder(recorder, Worker::new),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|load| load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not "metrics" means another bench.
    if std::env::args()
        .skip(1)
        .any(|arg| !arg.starts_with('-') && !"metrics".contains(arg.as_str()))
    {
        return;
    }
    let rounds = env_usize("ROUNDS", 15);
    let n = env_usize("N", 10_000);
    let threads: Vec<usize> = std::env::var("THREADS")
        .unwrap_or_else(|_| "1,2".to_owned())
        .split(',')
        .map(|item| item.trim().parse().expect("THREADS: numbers separated by commas"))
        .collect();
    let names = ids("job", n);
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();

    println!(
        "## metrics: {n} tasks, {rounds} counted rounds (+1 warm-up), {} CPUs, load average at start {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "| runtime threads | variant | median | min | max | / off (medians) | / off per round: median [min .. max] | added per task |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &threads in &threads {
        eprintln!("metrics: n={n} threads={threads} ...");
        let rt = runtime_with(threads);
        let mut samples = vec![Vec::new(); VARIANTS.len()];
        for round in 0..=rounds {
            for k in 0..VARIANTS.len() {
                let i = (round + k) % VARIANTS.len();
                let worker = build(VARIANTS[i], &recorder);
                let (names, owned) = (names.clone(), names.clone());
                let (elapsed, leftover): (Duration, (Worker, Vec<String>)) =
                    run_in_task(&rt, on_worker(worker, names, owned));
                {
                    let _runtime = rt.enter();
                    drop(leftover); // freed outside the timed region
                }
                handle.run_upkeep();
                std::hint::black_box(handle.render());
                if round > 0 {
                    samples[i].push(elapsed.as_secs_f64());
                }
            }
        }
        let off = &samples[0];
        for (name, samples) in VARIANTS.iter().zip(&samples) {
            let per_round: Vec<f64> = samples.iter().zip(off).map(|(x, base)| x / base).collect();
            println!(
                "| {threads} | {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.3}x | {:.3}x [{:.2} .. {:.2}] | {:+.0} ns |",
                median(samples) * 1e3,
                min(samples) * 1e3,
                max(samples) * 1e3,
                median(samples) / median(off),
                median(&per_round),
                min(&per_round),
                max(&per_round),
                (median(samples) - median(off)) / n as f64 * 1e9,
            );
        }
    }
    println!("\n(load average at the end {})", load_average());
}
