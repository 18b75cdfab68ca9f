//! Alternating side-by-side comparison of `Worker` with tokio's own primitives.
//!
//! It runs rounds; each round runs every variant of a case once, in turn (the starting variant
//! rotates from round to round), so that the machine's noise hits all variants alike. It prints
//! markdown tables of the medians over the rounds, min and max, and the ratio to the baseline
//! measured in the same run (`TaskTracker` for submit and drain, a bare `DashMap` for status):
//! the ratio of the medians, and the median of the per-round ratios. One warm-up round per case
//! is run first and not counted.
//!
//! ```sh
//! cargo bench -p background-worker-benches --bench compare             # everything
//! ROUNDS=7 cargo bench -p background-worker-benches --bench compare -- submit status
//! ```
//!
//! Sections: `submit`, `drain`, `status`; positional arguments are filters (a section runs if
//! its name contains one; none, or `compare`, means all). Settings, from the environment:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `ROUNDS` | 5 | counted rounds per case |
//! | `SIZES` | `10000,100000` | N for submit to completion |
//! | `THREADS` | `1,2` | runtime worker threads, for submit and drain |
//! | `SUBMITTERS` | `1,4` | concurrent submitting tasks, for submit |
//! | `DRAIN_TASKS` | 10000 | running tasks drained at shutdown |
//! | `STATUS_ENTRIES` | 100000 | tracked tasks for the status lookups |
//! | `LOOKUPS` | 1048576 | status lookups timed per variant and round |
//!
//! Ids (and every copy a variant needs) are made, and the copies dropped, outside the timed regions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use background_worker::{TaskStatus, Worker};
use background_worker_benches::submit::Variant;
use background_worker_benches::{drain, ids, now, run_in_task, runtime_with, until_running, XorShift};
use dashmap::DashMap;

/// The settings of one run of the comparison.
struct Settings {
    rounds: usize,
    sizes: Vec<usize>,
    threads: Vec<usize>,
    submitters: Vec<usize>,
    drain_tasks: usize,
    status_entries: usize,
    lookups: usize,
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let list: Vec<usize> = value
        .split(',')
        .map(|item| {
            let item = item.trim().replace('_', "");
            match item.parse::<usize>() {
                Ok(number) if number > 0 => number,
                _ => panic!("{name}={value}: expected positive integers separated by commas"),
            }
        })
        .collect();
    list
}

fn env_one(name: &str, default: usize) -> usize {
    let list = env_list(name, &default.to_string());
    assert_eq!(list.len(), 1, "{name}: expected one number");
    list[0]
}

impl Settings {
    fn from_env() -> Self {
        Self {
            rounds: env_one("ROUNDS", 5),
            sizes: env_list("SIZES", "10000,100000"),
            threads: env_list("THREADS", "1,2"),
            submitters: env_list("SUBMITTERS", "1,4"),
            drain_tasks: env_one("DRAIN_TASKS", 10_000),
            status_entries: env_one("STATUS_ENTRIES", 100_000),
            lookups: env_one("LOOKUPS", 1 << 20),
        }
    }
}

/// The times (in seconds) one variant took, one per counted round.
#[derive(Default, Clone)]
struct Samples(Vec<f64>);

impl Samples {
    fn median(&self) -> f64 {
        median(&self.0)
    }

    fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }
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

/// Runs `rounds` counted rounds (after one warm-up round) of `variants`, each round calling
/// `run(i)` once for every variant index `i`, starting at a different variant each round.
/// `run` returns the measured time of one run.
fn alternate(variants: usize, rounds: usize, mut run: impl FnMut(usize) -> Duration) -> Vec<Samples> {
    let mut samples = vec![Samples::default(); variants];
    for round in 0..=rounds {
        for k in 0..variants {
            let i = (round + k) % variants;
            let elapsed = run(i);
            if round > 0 {
                samples[i].0.push(elapsed.as_secs_f64());
            }
        }
    }
    samples
}

/// A time in seconds, with a unit that keeps three or four significant digits.
fn time(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.3} s")
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else if seconds >= 1e-6 {
        format!("{:.2} µs", seconds * 1e6)
    } else {
        format!("{:.1} ns", seconds * 1e9)
    }
}

/// One case of a table: a label, the variants' names and their samples, and the index of the
/// baseline the ratios are taken to.
struct Case {
    label: String,
    names: Vec<&'static str>,
    samples: Vec<Samples>,
    baseline: usize,
    /// Divides every time for the "per" column (tasks or lookups per run).
    per: usize,
}

impl Case {
    fn rows(&self, per_unit: &str) -> Vec<String> {
        let base = &self.samples[self.baseline];
        self.names
            .iter()
            .zip(&self.samples)
            .map(|(name, samples)| {
                let per_round: Vec<f64> = samples
                    .0
                    .iter()
                    .zip(&base.0)
                    .map(|(value, base)| value / base)
                    .collect();
                let per = samples.median() / self.per as f64;
                let per = if per_unit == "ns" {
                    format!("{:.1} ns", per * 1e9)
                } else {
                    format!("{:.3} µs", per * 1e6)
                };
                format!(
                    "| {} | {name} | {} | {per} | {} | {} | {:.2}x | {:.2}x [{:.2} .. {:.2}] |",
                    self.label,
                    time(samples.median()),
                    time(samples.min()),
                    time(samples.max()),
                    samples.median() / base.median(),
                    median(&per_round),
                    per_round.iter().copied().fold(f64::INFINITY, f64::min),
                    per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                )
            })
            .collect()
    }
}

fn print_table(title: &str, case_header: &str, per_header: &str, baseline: &str, cases: &[Case]) {
    println!("\n### {title}\n");
    println!(
        "| {case_header} | variant | median | {per_header} | min | max | / {baseline} (medians) | \
         / {baseline} per round: median [min .. max] |"
    );
    let columns = case_header.matches('|').count() + 1 + 7;
    println!("|{}", "---|".repeat(columns));
    let per_unit = if per_header.contains("lookup") {
        "ns"
    } else {
        "µs"
    };
    for case in cases {
        for row in case.rows(per_unit) {
            println!("{row}");
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|load| load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn submit(settings: &Settings) {
    let mut cases = Vec::new();
    for &threads in &settings.threads {
        let rt = runtime_with(threads);
        for &n in &settings.sizes {
            let names = ids("job", n);
            for &submitters in &settings.submitters {
                eprintln!("submit: n={n} threads={threads} submitters={submitters} ...");
                let samples = alternate(Variant::ALL.len(), settings.rounds, |i| {
                    let variant = Variant::ALL[i];
                    let input = variant.prepare(&names, submitters);
                    let run = run_in_task(&rt, variant.run(input));
                    let elapsed = run.elapsed;
                    let _runtime = rt.enter();
                    drop(run); // a finished `Worker`: freed outside the timed region
                    elapsed
                });
                cases.push(Case {
                    label: format!("{n} | {threads} | {submitters}"),
                    names: Variant::ALL.iter().map(|variant| variant.name()).collect(),
                    samples,
                    baseline: Variant::ALL
                        .iter()
                        .position(|&variant| variant == Variant::Tracker)
                        .expect("a tracker variant"),
                    per: n,
                });
            }
        }
    }
    print_table(
        "Submit to completion (N trivial tasks, submit each, then wait for each)",
        "N | runtime threads | submitting tasks",
        "per task",
        "tracker",
        &cases,
    );
}

fn drain(settings: &Settings) {
    let n = settings.drain_tasks;
    let names = ids("task", n);
    let mut cases = Vec::new();
    for &threads in &settings.threads {
        eprintln!("drain: n={n} threads={threads} ...");
        let rt = runtime_with(threads);
        let samples = alternate(drain::VARIANTS.len(), settings.rounds, |i| {
            let (_, variant) = drain::VARIANTS[i];
            let names = names.clone();
            run_in_task(&rt, variant(names))
        });
        cases.push(Case {
            label: format!("{n} | {threads}"),
            names: drain::VARIANTS.iter().map(|(name, _)| *name).collect(),
            samples,
            baseline: drain::VARIANTS
                .iter()
                .position(|(name, _)| *name == "task_tracker_token")
                .expect("a tracker variant"),
            per: n,
        });
    }
    print_table(
        "Shutdown drain (running cooperative tasks; only the drain is timed)",
        "tasks | runtime threads",
        "per task",
        "task_tracker_token",
        &cases,
    );
}

fn status(settings: &Settings) {
    let entries = settings.status_entries;
    let lookups = settings.lookups;
    eprintln!("status: {entries} tracked, {lookups} lookups per variant and round ...");
    let names = ids("task", entries);
    // The tasks never finish; the runtime's one thread is idle while lookups are timed.
    let rt = runtime_with(1);
    let worker = Worker::new();
    rt.block_on(async {
        for id in &names {
            worker
                .submit(id.as_str(), std::future::pending)
                .await
                .expect("submit");
        }
        until_running(&worker, entries).await;
    });
    let map: DashMap<String, u8> = names.iter().map(|id| (id.clone(), 0)).collect();

    let mut rng = XorShift::new(0x5eed);
    let order: Vec<u32> = (0..lookups).map(|_| rng.next_below(entries) as u32).collect();
    let hot = names[entries / 2].as_str();
    assert_eq!(now(worker.get_task_status(hot)), Some(TaskStatus::Running));
    assert!(order.iter().take(10_000).all(|&i| {
        let id = names[i as usize].as_str();
        now(worker.get_task_status(id)).is_some() && map.contains_key(id)
    }));

    let random = alternate(2, settings.rounds, |i| {
        let start = Instant::now();
        if i == 0 {
            for &k in &order {
                black_box(now(worker.get_task_status(black_box(names[k as usize].as_str()))));
            }
        } else {
            for &k in &order {
                black_box(map.get(black_box(names[k as usize].as_str())).map(|entry| *entry));
            }
        }
        start.elapsed()
    });
    let hot_samples = alternate(2, settings.rounds, |i| {
        let start = Instant::now();
        if i == 0 {
            for _ in 0..lookups {
                black_box(now(worker.get_task_status(black_box(hot))));
            }
        } else {
            for _ in 0..lookups {
                black_box(map.get(black_box(hot)).map(|entry| *entry));
            }
        }
        start.elapsed()
    });
    let cases = [
        Case {
            label: format!("random id of {entries}"),
            names: vec!["worker", "dashmap"],
            samples: random,
            baseline: 1,
            per: lookups,
        },
        Case {
            label: format!("hot id, {entries} tracked"),
            names: vec!["worker", "dashmap"],
            samples: hot_samples,
            baseline: 1,
            per: lookups,
        },
    ];
    print_table(
        &format!("Status lookup (`get_task_status` polled once, no runtime; {lookups} lookups per sample)"),
        "pattern",
        "per lookup",
        "dashmap",
        &cases,
    );
    rt.block_on(worker.shutdown());
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments are filters, as for the criterion benches
    // (`cargo bench -p background-worker-benches -- FILTER` hands them to every bench): run the
    // sections whose name contains one, or all of them for one that "compare" contains.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    const SECTIONS: [&str; 3] = ["submit", "drain", "status"];
    let wanted = |section: &str| {
        filters.is_empty()
            || filters
                .iter()
                .any(|filter| section.contains(filter.as_str()) || "compare".contains(filter.as_str()))
    };
    if !SECTIONS.iter().any(|section| wanted(section)) {
        eprintln!(
            "compare: no section matches {filters:?} (sections: {})",
            SECTIONS.join(", ")
        );
        return;
    }

    let settings = Settings::from_env();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "## compare: {} counted rounds (+1 warm-up) per case, {cpus} CPUs, load average at start {}",
        settings.rounds,
        load_average()
    );
    if settings.rounds < 5 {
        println!("\n(fewer than 5 rounds: a smoke run, not figures to quote)");
    }
    let started = Instant::now();
    if wanted("submit") {
        submit(&settings);
    }
    if wanted("drain") {
        drain(&settings);
    }
    if wanted("status") {
        status(&settings);
    }
    println!(
        "\n(load average at the end {}; {:.0} s in all)",
        load_average(),
        started.elapsed().as_secs_f64()
    );
}
