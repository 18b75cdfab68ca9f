//! Claimed submissions against a real `redis-server` on loopback: one claimed submission's
//! latency (`RedisMirror::submit`, one `EVALSHA` of `claim.lua` plus the local spawn) against a
//! bare `PING` round trip through the same client stack, in alternating rounds of one run
//! (medians, p99, and the per-round ratio's median and spread); then claimed submissions per
//! second from one replica with many concurrent submitters. Concurrent claims share the
//! mirror's one multiplexed connection, which pipelines them on the socket (no explicit
//! `MULTI` or batching). Then the same throughput on a Redis Cluster of three masters
//! (`redis+cluster://`, started by the bench on loopback ports) beside the single node, in the
//! same run.
//!
//! `cargo bench -p background-worker-benches --bench claims --features redis`. It starts its own
//! `redis-server` on a free loopback port (or uses `BACKGROUND_WORKER_REDIS_PORT`), and says so
//! and exits if there is none.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::{ClaimError, RedisMirror, Worker};
use background_worker_benches::redis_server::{redis, Server};

const ROUNDS: usize = 7;
const PER_ROUND: usize = 2_000;
const SUBMITTERS: usize = 64;
const PER_SUBMITTER: usize = 500;

/// Three `redis-server --cluster-enabled yes` made one cluster (no replicas); killed on drop.
struct ClusterNodes(Vec<Server>, u16, std::path::PathBuf);

impl Drop for ClusterNodes {
    fn drop(&mut self) {
        self.0.clear();
        let _ = std::fs::remove_dir_all(&self.2);
    }
}

fn cluster() -> Option<ClusterNodes> {
    let dir = std::env::temp_dir().join(format!("bw-bench-cluster-{}", std::process::id()));
    let mut nodes = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let node_dir = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).ok()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                // The bus port explicitly: port + 10 000 is out of range above 55 535.
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
                "--dir",
                &node_dir.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        nodes.push(Server(Some(child)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ports.push(port);
    }
    let nodes = ClusterNodes(nodes, ports[0], dir);
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(ports.iter().map(|port| format!("127.0.0.1:{port}")))
        .args(["--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !created.success() {
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in &ports {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .ok()?;
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Some(nodes)
}

/// Claimed submissions per second from `SUBMITTERS` concurrent submitters on a fresh mirror of
/// `url`.
async fn throughput(url: &str, namespace: &str) -> (usize, Duration) {
    let mirror = RedisMirror::builder(url)
        .namespace(namespace)
        .replica("bench")
        .lease(Duration::from_secs(2))
        .retain_finished_for(Duration::from_secs(30))
        .build()
        .expect("mirror settings");
    let worker = Worker::builder()
        .observer(mirror.observer())
        .retain_finished_for(Duration::from_secs(1))
        .build();
    mirror.start(&worker).expect("start");
    claim(&mirror, "warm-up".to_owned()).await;
    let mirror = Arc::new(mirror);
    let started = Instant::now();
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let mirror = Arc::clone(&mirror);
            tokio::spawn(async move {
                for n in 0..PER_SUBMITTER {
                    claim(&mirror, format!("t{s}-{n}")).await;
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.await.expect("submitter");
    }
    let took = started.elapsed();
    worker.shutdown().await;
    let _ = mirror.close(Duration::from_secs(5)).await;
    (SUBMITTERS * PER_SUBMITTER, took)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// Claims `id` with a trivial body, waiting out a young epoch (a fresh namespace).
async fn claim(mirror: &RedisMirror, id: String) {
    loop {
        match mirror.submit(id.clone(), |_| async { Ok(()) }).await {
            Ok(_) => return,
            Err(ClaimError::NotKnownYet { retry_after, .. }) => tokio::time::sleep(retry_after).await,
            Err(other) => panic!("claim {id}: {other}"),
        }
    }
}

fn main() {
    let Some((_server, port)) = redis() else {
        println!("claims bench: no redis-server on the PATH and no BACKGROUND_WORKER_REDIS_PORT; skipped");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = format!("redis://127.0.0.1:{port}");
        let namespace = format!("bench-claims-{}", std::process::id());
        let mirror = RedisMirror::builder(url.as_str())
            .namespace(namespace.as_str())
            .replica("bench")
            .lease(Duration::from_secs(2))
            .retain_finished_for(Duration::from_secs(30))
            .build()
            .expect("mirror settings");
        let worker = Worker::builder()
            .observer(mirror.observer())
            .retain_finished_for(Duration::from_secs(1))
            .build();
        mirror.start(&worker).expect("start");
        claim(&mirror, "warm-up".to_owned()).await;
        let mut ping = redis::Client::open(url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");

        let (mut pings, mut claims, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let mut round_pings = Vec::with_capacity(PER_ROUND);
            let mut round_claims = Vec::with_capacity(PER_ROUND);
            for n in 0..PER_ROUND {
                let started = Instant::now();
                let _: String = redis::cmd("PING").query_async(&mut ping).await.expect("PING");
                round_pings.push(started.elapsed());
                let started = Instant::now();
                claim(&mirror, format!("r{round}-{n}")).await;
                round_claims.push(started.elapsed());
            }
            let (p, c) = (
                percentile(&mut round_pings, 0.5),
                percentile(&mut round_claims, 0.5),
            );
            ratios.push(c.as_secs_f64() / p.as_secs_f64());
            pings.extend(round_pings);
            claims.extend(round_claims);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "PING round trip: median {:?}, p99 {:?} ({} samples)",
            percentile(&mut pings, 0.5),
            percentile(&mut pings, 0.99),
            pings.len()
        );
        println!(
            "claimed submission (sequential): median {:?}, p99 {:?} ({} samples)",
            percentile(&mut claims, 0.5),
            percentile(&mut claims, 0.99),
            claims.len()
        );
        println!(
            "ratio claimed / PING, per-round medians over {ROUNDS} alternating rounds: median {:.2}x (min {:.2}x, max {:.2}x)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );

        worker.shutdown().await;
        let _ = mirror.close(Duration::from_secs(5)).await;

        let cluster = cluster();
        if cluster.is_none() {
            println!("throughput on a cluster: skipped (redis-cli --cluster create failed)");
        }
        // Alternating single node and cluster, three times each; medians.
        let (mut single, mut clustered) = (Vec::new(), Vec::new());
        for round in 0..3 {
            let (total, took) = throughput(&url, &format!("{namespace}-t{round}")).await;
            single.push(total as f64 / took.as_secs_f64());
            if let Some(nodes) = &cluster {
                let url = format!("redis+cluster://127.0.0.1:{}", nodes.1);
                let (total, took) = throughput(&url, &format!("{namespace}-c{round}")).await;
                clustered.push(total as f64 / took.as_secs_f64());
            }
        }
        let median = |rates: &mut Vec<f64>| {
            rates.sort_by(f64::total_cmp);
            (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
        };
        let (m, lo, hi) = median(&mut single);
        println!(
            "throughput, single node: {:.0} claimed submissions/s (median of 3; min {lo:.0}, max {hi:.0}) from {SUBMITTERS} concurrent submitters x {PER_SUBMITTER}, one replica (multiplexed connection, no explicit batching)",
            m
        );
        if !clustered.is_empty() {
            let (c, clo, chi) = median(&mut clustered);
            println!(
                "throughput, cluster of 3 masters: {c:.0}/s (median of 3; min {clo:.0}, max {chi:.0}); cluster / single: {:.2}x",
                c / m
            );
        }
    });
}
