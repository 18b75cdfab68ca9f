//! The Redis mirror's cost and speed, against a real `redis-server` on loopback: submit to
//! completion of 10k trivial tasks with the mirror attached vs without (alternating rounds in one
//! run, medians; `ROUNDS` of each, 15 by default) in wall time and in this process's CPU time
//! (the writer's included, the `redis-server`'s not), the mirror's end-to-end throughput (transitions per second until Redis has
//! them all), a remote status lookup's latency (median, p99), and a flood of 10^5 jobs with a
//! short retention: the namespace's size in Redis while and after it.
//!
//! With `-- --overhead`, only the first two (the mirror's cost and its throughput). With
//! `-- --cluster`, only the mirror's end-to-end throughput on that single node vs on a
//! Redis Cluster of three masters and three replicas it starts (alternating rounds, medians).
//!
//! `cargo bench -p background-worker-benches --bench mirror --features redis`. It starts its own `redis-server` on a free
//! loopback port (or uses `BACKGROUND_WORKER_REDIS_PORT`), and says so and exits if there is
//! none. Only std, tokio and background-worker: `redis-cli` (from the same package as the
//! server) reads the server's key count and memory.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use background_worker::{RedisMirror, Worker};
use background_worker_benches::redis_server::{redis, Server};

const TASKS: usize = 10_000;
const LOOKUPS: usize = 5_000;
const FLOOD: usize = 100_000;

/// `redis-cli` on the bench's server, one line of output.
fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Keys of one namespace (`--scan`, never `KEYS`).
fn namespace_keys(port: u16, namespace: &str) -> usize {
    cli(port, &["--scan", "--pattern", &format!("{{{namespace}}}:*")])
        .lines()
        .count()
}

fn used_memory(port: u16) -> String {
    cli(port, &["INFO", "memory"])
        .lines()
        .find_map(|line| line.strip_prefix("used_memory_human:").map(str::to_owned))
        .unwrap_or_default()
}

/// Waits until `mirror` has written everything: queue empty, no re-sync due or running, and
/// the `last` job's final status in Redis. The cheap checks (the mirror's own counters) come
/// first, so the lookups that confirm the last write cost the process next to nothing.
async fn settled(mirror: &RedisMirror, last: Option<&str>) {
    let quiet = || {
        let health = mirror.health();
        health.queue_depth == 0 && !health.needs_resync
    };
    loop {
        while !quiet() {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let done = match last {
            Some(last) => matches!(mirror.job(last).await, Ok(Some(job)) if job.status.is_terminal()),
            None => true,
        };
        if done && quiet() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// CPU time this process has used so far, all its threads (`/proc/self/task/*/schedstat`,
/// nanoseconds; zero where that is not available). The `redis-server` is another process.
fn cpu_used() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// The per-round ratios with / without, lowest to highest: "min .. median .. max".
fn spread(without: &[Duration], with: &[Duration]) -> String {
    let mut ratios: Vec<f64> = without
        .iter()
        .zip(with)
        .map(|(without, with)| with.as_secs_f64() / without.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    format!(
        "{:.2}x .. {:.2}x .. {:.2}x",
        ratios[0],
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    )
}

/// Rounds of each variant: `ROUNDS` from the environment, 15 by default.
fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .filter(|&rounds| rounds > 0)
        .unwrap_or(15)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mirror(port: u16, namespace: &str, replica: &str, retention: Duration) -> RedisMirror {
    mirror_at(
        &format!("redis://127.0.0.1:{port}"),
        namespace,
        replica,
        retention,
    )
}

fn mirror_at(url: &str, namespace: &str, replica: &str, retention: Duration) -> RedisMirror {
    RedisMirror::builder(url)
        .namespace(namespace)
        .replica(replica)
        .retain_finished_for(retention)
        .trim_interval(Duration::from_millis(500))
        .build()
        .expect("mirror settings")
}

/// One round's figures.
struct Round {
    /// From the first submit until every task finished locally.
    local: Duration,
    /// With a mirror: from the first submit until Redis has every final status.
    mirrored: Option<Duration>,
    /// The process's CPU time over the round (until `mirrored` with a mirror).
    cpu: Duration,
    /// Transitions dropped into re-syncs.
    overflows: u64,
}

/// Submits `TASKS` trivial tasks and waits for each (and with a mirror, for Redis to have
/// every final status).
async fn round(port: u16, with_mirror: Option<&str>) -> Round {
    round_at(&format!("redis://127.0.0.1:{port}"), with_mirror).await
}

async fn round_at(url: &str, with_mirror: Option<&str>) -> Round {
    let ids: Vec<String> = (0..TASKS).map(|n| format!("job-{n:07}")).collect();
    let mirror = with_mirror.map(|ns| mirror_at(url, ns, "bench", Duration::from_secs(5)));
    let mut builder = Worker::builder();
    if let Some(mirror) = &mirror {
        builder = builder.observer(mirror.observer());
    }
    let worker = builder.build();
    if let Some(mirror) = &mirror {
        mirror.start(&worker).expect("start");
        // The lease is taken before the first write: not part of the measurement.
        while !mirror.health().lease_held {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let cpu_before = cpu_used();
    let start = Instant::now();
    for id in &ids {
        worker
            .submit(id.clone(), || async { Ok(()) })
            .await
            .expect("submit");
    }
    for id in &ids {
        worker.wait(id).await;
    }
    let local = start.elapsed();
    let mut mirrored = None;
    let mut overflows = 0;
    if let Some(mirror) = &mirror {
        settled(mirror, ids.last().map(String::as_str)).await;
        mirrored = Some(start.elapsed());
        overflows = mirror.health().overflows;
    }
    let cpu = cpu_used().saturating_sub(cpu_before);
    worker.shutdown().await;
    if let Some(mirror) = &mirror {
        mirror.close(Duration::from_secs(10)).await.expect("close");
    }
    Round {
        local,
        mirrored,
        cpu,
        overflows,
    }
}

async fn lookups(port: u16) {
    let writer = mirror(port, "bench-lookup", "owner", Duration::from_secs(600));
    let worker = Worker::builder().observer(writer.observer()).build();
    writer.start(&worker).expect("start");
    for n in 0..TASKS {
        worker
            .submit(format!("job-{n:07}"), || async { Ok(()) })
            .await
            .expect("submit");
    }
    let reader = mirror(port, "bench-lookup", "reader", Duration::from_secs(600));
    let other = Worker::new();
    reader.start(&other).expect("start");
    let last = format!("job-{:07}", TASKS - 1);
    settled(&writer, Some(&last)).await;
    let mut samples = Vec::with_capacity(LOOKUPS);
    let mut state = 0x9e37_79b9_u64;
    for _ in 0..LOOKUPS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = format!("job-{:07}", state % TASKS as u64);
        let started = Instant::now();
        let job = reader.job(&id).await.expect("lookup").expect("found");
        samples.push(started.elapsed());
        std::hint::black_box(job);
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "remote status lookup ({LOOKUPS} random ids of {TASKS}, another replica): median {:?}, p99 {:?}, max {:?}",
        p(0.5),
        p(0.99),
        samples[samples.len() - 1]
    );
    let started = Instant::now();
    let page = reader.jobs(None, 500).await.expect("page");
    println!(
        "listing page of {} jobs: {:?}",
        page.jobs.len(),
        started.elapsed()
    );
    worker.shutdown().await;
    writer.close(Duration::from_secs(10)).await.expect("close");
    reader.close(Duration::from_secs(10)).await.expect("close");
}

async fn flood(port: u16) {
    let retention = Duration::from_secs(2);
    let mirror = mirror(port, "bench-flood", "flood", retention);
    let worker = Worker::builder()
        .observer(mirror.observer())
        .retain_finished_for(retention)
        .build();
    mirror.start(&worker).expect("start");
    let ns = "bench-flood";
    let before = (namespace_keys(port, ns), used_memory(port));
    let start = Instant::now();
    let mut peak_keys = 0;
    for n in 0..FLOOD {
        worker
            .submit(format!("flood-{n:07}"), || async { Ok(()) })
            .await
            .expect("submit");
        if n % 10_000 == 9_999 {
            tokio::task::yield_now().await;
            peak_keys = peak_keys.max(namespace_keys(port, ns));
        }
    }
    settled(&mirror, None).await;
    let mirrored = start.elapsed();
    let at_end = (namespace_keys(port, ns), used_memory(port));
    peak_keys = peak_keys.max(at_end.0);
    // Retention, then a few trimmer ticks.
    let settle = retention + Duration::from_secs(2);
    tokio::time::sleep(settle).await;
    let after = (namespace_keys(port, ns), used_memory(port));
    let health = mirror.health();
    println!(
        "flood of {FLOOD} jobs (retention {retention:?}): all mirrored in {mirrored:?}; namespace keys \
         (redis used_memory) before {} ({}), peak seen {peak_keys}, when mirrored {} ({}), {settle:?} \
         later {} ({}); records written {}, transitions dropped into re-syncs {}, re-syncs {}",
        before.0,
        before.1,
        at_end.0,
        at_end.1,
        after.0,
        after.1,
        health.written,
        health.overflows,
        health.resyncs
    );
    worker.shutdown().await;
    mirror.close(Duration::from_secs(10)).await.expect("close");
}

/// A Redis Cluster of three masters with a replica each (six `redis-server`s in a temporary
/// directory, joined by `redis-cli --cluster create`), killed on drop. Returns the servers and
/// the port of one master.
fn cluster() -> Option<(Vec<Server>, u16, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("bw-bench-cluster-{}", std::process::id()));
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..6 {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let node_dir = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).ok()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            // The bus port explicitly: port + 10 000 is out of range above 55 535.
            .args([
                "--cluster-port",
                &TcpListener::bind("127.0.0.1:0")
                    .ok()?
                    .local_addr()
                    .ok()?
                    .port()
                    .to_string(),
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--repl-diskless-sync-delay",
                "0",
            ])
            .args(["--dir", &node_dir.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        servers.push(Server(Some(child)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ports.push(port);
    }
    let nodes: Vec<String> = ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !created.status.success() {
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ports
        .iter()
        .all(|port| cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((servers, ports[0], dir))
}

/// `--cluster`: the mirror's end-to-end throughput on a single node vs on a Redis Cluster
/// (every mirror pointed at the cluster through one master's URL, whatever the namespace's
/// slot), alternating rounds in one run, medians with their spread.
fn compare_cluster(single: u16) {
    let Some((_nodes, node, dir)) = cluster() else {
        println!("cluster comparison skipped: the cluster did not form");
        return;
    };
    let single_url = format!("redis://127.0.0.1:{single}");
    let cluster_url = format!("redis+cluster://127.0.0.1:{node}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        tokio::spawn(async move {
            round_at(&single_url, Some("bench-warm-single")).await;
            round_at(&cluster_url, Some("bench-warm-cluster")).await;
            let (mut on_single, mut on_cluster) = (Vec::new(), Vec::new());
            let rounds = rounds();
            for n in 0..rounds {
                let ns = format!("bench-cmp-{n}");
                on_single.push(round_at(&single_url, Some(&ns)).await.mirrored.expect("mirrored"));
                on_cluster.push(round_at(&cluster_url, Some(&ns)).await.mirrored.expect("mirrored"));
            }
            let rate = |d: Duration| (3 * TASKS) as f64 / d.as_secs_f64();
            let spread = |samples: &mut Vec<Duration>| {
                samples.sort();
                let (lo, mid, hi) = (samples[0], samples[samples.len() / 2], samples[samples.len() - 1]);
                (rate(mid), rate(hi), rate(lo))
            };
            let (single, single_lo, single_hi) = spread(&mut on_single);
            let (cluster, cluster_lo, cluster_hi) = spread(&mut on_cluster);
            println!(
                "mirror end to end, {TASKS} tasks, medians of {rounds} alternating rounds: single node \
                 {single:.0} transitions/s (range {single_lo:.0}..{single_hi:.0}), Redis Cluster of 3 masters \
                 + 3 replicas {cluster:.0} transitions/s (range {cluster_lo:.0}..{cluster_hi:.0}): ratio {:.2}x",
                cluster / single
            );
        })
        .await
        .expect("bench task");
    });
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    let Some((_server, port)) = redis() else {
        println!("mirror bench skipped: no redis-server on the PATH");
        return;
    };
    if std::env::args().any(|arg| arg == "--cluster") {
        compare_cluster(port);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::spawn(async move {
            // Warm-up of both variants.
            round(port, None).await;
            round(port, Some("bench-warmup")).await;
            let (mut without, mut with, mut mirrored) = (Vec::new(), Vec::new(), Vec::new());
            let (mut cpu_without, mut cpu_with) = (Vec::new(), Vec::new());
            let mut overflows = 0;
            let rounds = rounds();
            for n in 0..rounds {
                let plain = round(port, None).await;
                without.push(plain.local);
                cpu_without.push(plain.cpu);
                let mirrored_round = round(port, Some(&format!("bench-{n}"))).await;
                with.push(mirrored_round.local);
                cpu_with.push(mirrored_round.cpu);
                mirrored.push(mirrored_round.mirrored.expect("mirrored"));
                overflows += mirrored_round.overflows;
            }
            let ratios = spread(&without, &with);
            let cpu_ratios = spread(&cpu_without, &cpu_with);
            let (without, with, mirrored) = (median(&mut without), median(&mut with), median(&mut mirrored));
            let (cpu_without, cpu_with) = (median(&mut cpu_without), median(&mut cpu_with));
            println!(
                "submit to completion, {TASKS} tasks, medians of {rounds} alternating rounds: \
                 without mirror {without:?}, with mirror {with:?}: ratio {:.2}x \
                 (per round: {ratios}), {:.0} ns added per task",
                with.as_secs_f64() / without.as_secs_f64(),
                (with.as_secs_f64() - without.as_secs_f64()) * 1e9 / TASKS as f64
            );
            println!(
                "this process's CPU time per round (the writer's included, until Redis has \
                 everything; the redis-server's not): without mirror {cpu_without:?}, with mirror \
                 {cpu_with:?}: ratio {:.2}x (per round: {cpu_ratios}), {:.0} ns added per task",
                cpu_with.as_secs_f64() / cpu_without.as_secs_f64(),
                (cpu_with.as_secs_f64() - cpu_without.as_secs_f64()) * 1e9 / TASKS as f64
            );
            println!(
                "mirror end to end: every final status in Redis after {mirrored:?} (median): {:.0} transitions/s \
                 ({} transitions per round; {overflows} dropped into re-syncs over all rounds)",
                (3 * TASKS) as f64 / mirrored.as_secs_f64(),
                3 * TASKS
            );
            if !std::env::args().any(|arg| arg == "--overhead") {
                lookups(port).await;
                flood(port).await;
            }
        })
        .await
        .expect("bench task");
    });
}
