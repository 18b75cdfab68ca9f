//! The Redis mirror and claimed submissions on a real Redis Cluster: three masters and three
//! replicas on loopback ports, started by the test (`redis-server --cluster-enabled yes`, then
//! `redis-cli --cluster create`). The mirror is given `redis+cluster://` and a node that does not
//! own the namespace's slot:
//!
//! - writes, reads, the listing, claims, cancels across replicas (pub/sub is cluster-wide; the
//!   stored flag needs none) and health, through `MOVED`;
//! - a coordinated failover (`CLUSTER FAILOVER` on the slot's replica): claims stay held, the
//!   job's end reaches the new master;
//! - a killed master: its replica is promoted; the mirror finds it, the job's end is written
//!   there, and a new claim is granted after the epoch's grace.
//!
//! Real time; every wait is bounded.

#![cfg(feature = "redis")]

mod redis_support;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::{ClaimError, ClusterStatus, RedisMirror, Worker};
use tokio::sync::Notify;

use redis_support::eventually;

const SOON: Duration = Duration::from_secs(30);

/// Six `redis-server --cluster-enabled yes` on loopback, made one cluster; killed on drop.
struct Cluster {
    nodes: Vec<(u16, Option<Child>)>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    fn start(test: &str) -> Option<Self> {
        let required = std::env::var("BACKGROUND_WORKER_REDIS_REQUIRED").is_ok_and(|v| v == "1");
        if Command::new("redis-server").arg("--version").output().is_err() {
            assert!(!required, "{test}: redis-server is not installed");
            eprintln!("SKIPPED {test}: no redis-server on the PATH");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("bw-cluster-{test}-{}", std::process::id()));
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            nodes.push((port, None));
        }
        let mut cluster = Self { nodes, dir };
        for index in 0..6 {
            cluster.spawn(index);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");
        cluster.wait_ok();
        Some(cluster)
    }

    fn spawn(&mut self, index: usize) {
        let port = self.nodes[index].0;
        let dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &dir.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.nodes[index].1 = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "node {port} never accepted");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Until every live node says `cluster_state:ok`.
    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for (port, child) in &self.nodes {
            if child.is_none() {
                continue;
            }
            while !cli(*port, &["cluster", "info"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster never ok on {port}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The ports of the master that serves `slot` and of its replica, from `CLUSTER NODES`.
    fn owner(&self, slot: u16) -> (u16, u16) {
        let live = self.nodes.iter().find(|(_, child)| child.is_some()).unwrap().0;
        let nodes = cli(live, &["cluster", "nodes"]);
        let port_of = |field: &str| field.split(['@', ':']).nth(1).unwrap().parse::<u16>().unwrap();
        let mut master = None;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            for range in &fields[8..] {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(low), Ok(high)) = (low.parse::<u16>(), high.parse::<u16>()) {
                    if (low..=high).contains(&slot) {
                        master = Some((fields[0].to_owned(), port_of(fields[1])));
                    }
                }
            }
        }
        let (id, master_port) = master.expect("a master for the slot");
        let replica = nodes
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.len() > 3 && fields[3] == id && !fields[2].contains("fail"))
            .map(|fields| port_of(fields[1]))
            .expect("a replica of the slot's master");
        (master_port, replica)
    }

    fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|(p, _)| *p == port).unwrap();
        if let Some(mut child) = node.1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A replica with a lease longer than a failover takes here (a killed master is found failed
/// after the 1 s node timeout, then its replica is elected): the failover is shorter than the
/// epoch's grace, so no run is judged dead meanwhile.
fn replica(url: &str, ns: &str, name: &str) -> (RedisMirror, Worker) {
    replica_with(url, ns, name, true)
}

fn replica_with(url: &str, ns: &str, name: &str, listen: bool) -> (RedisMirror, Worker) {
    let mirror = RedisMirror::builder(url)
        .namespace(ns)
        .replica(name)
        .listen_for_cancels(listen)
        .lease(Duration::from_secs(5))
        .query_timeout(Duration::from_secs(2))
        .trim_interval(Duration::from_millis(200))
        .build()
        .expect("valid settings");
    let worker = Worker::builder()
        .cancel_timeout(Duration::from_millis(500))
        .observer(mirror.observer())
        .build();
    mirror.start(&worker).expect("start");
    (mirror, worker)
}

/// Claims `id` with a body that waits for `release`, waiting out a young epoch.
async fn claim_blocked(mirror: &RedisMirror, id: &str, release: &Arc<Notify>) -> u64 {
    eventually(&format!("claim {id}"), SOON, || async {
        let release = Arc::clone(release);
        match mirror
            .submit(id.to_owned(), move |_| async move {
                release.notified().await;
                Ok(())
            })
            .await
        {
            Ok(token) => Some(token.get()),
            Err(ClaimError::NotKnownYet { .. } | ClaimError::Unavailable { .. }) => None,
            Err(other) => panic!("claim {id}: {other}"),
        }
    })
    .await
}

async fn live_on(mirror: &RedisMirror, id: &str) {
    eventually(
        &format!("{id} live, seen by {}", mirror.replica()),
        SOON,
        || async {
            mirror
                .job(id)
                .await
                .ok()
                .flatten()
                .filter(|job| !job.status.is_terminal())
        },
    )
    .await;
}

async fn status_on(mirror: &RedisMirror, id: &str, want: ClusterStatus) {
    let started = Instant::now();
    while started.elapsed() < SOON {
        match mirror.job(id).await {
            Ok(Some(job)) if job.status == want => return,
            other => {
                if started.elapsed() > SOON - Duration::from_secs(1) {
                    eprintln!(
                        "{id} on {}: {other:?}; health {:?}",
                        mirror.replica(),
                        mirror.health()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(
        &format!("{id} {want} seen by {}", mirror.replica()),
        SOON,
        || async {
            mirror
                .job(id)
                .await
                .ok()
                .flatten()
                .filter(|job| job.status == want)
        },
    )
    .await;
}

/// The slot of the namespace's hash tag.
fn slot(port: u16, ns: &str) -> u16 {
    cli(port, &["cluster", "keyslot", &format!("{{{ns}}}")])
        .trim()
        .parse()
        .unwrap()
}

/// A node that is neither `a` nor `b`.
fn other(cluster: &Cluster, not: &[u16]) -> u16 {
    cluster
        .nodes
        .iter()
        .map(|(port, _)| *port)
        .find(|port| !not.contains(port))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_and_claims_work_through_any_node_of_a_cluster() {
    let Some(mut cluster) = Cluster::start("any_node") else {
        return;
    };
    let ns = format!("cl-any-{}", std::process::id());
    let (master, slave) = cluster.owner(slot(cluster.nodes[0].0, &ns));
    let entry = other(&cluster, &[master, slave]);
    // a takes cancels from the stored flag only (no pub/sub).
    let (a, wa) = replica_with(&format!("redis+cluster://127.0.0.1:{entry}"), &ns, "a", false);
    let (b, _wb) = replica(&format!("redis+cluster://127.0.0.1:{slave}"), &ns, "b");
    let release = Arc::new(Notify::new());
    let token = claim_blocked(&a, "job-1", &release).await;
    assert!(matches!(
        b.submit("job-1", |_| async { Ok(()) }).await,
        Err(ClaimError::Held { ref replica, .. }) if replica == "a"
    ));
    live_on(&b, "job-1").await;
    wa.submit_with_context("job-2", |ctx| async move {
        ctx.cancelled().await;
        Ok(())
    })
    .await
    .unwrap();
    status_on(&b, "job-2", ClusterStatus::Running).await;
    let listed = b.jobs(None, 100).await.expect("listing");
    assert!(listed
        .jobs
        .iter()
        .any(|job| job.id == "job-1" && job.fencing_token == Some(token)));
    // A cancel from b reaches a's task, through the stored flag.
    let cancelled = b.cancel("job-2", Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(cancelled.status, ClusterStatus::Cancelled);
    release.notify_one();
    status_on(&b, "job-1", ClusterStatus::Completed).await;
    let health = b.health();
    assert!(health.connected, "{health:?}");
    // Every node gone: health stops saying connected.
    let ports: Vec<u16> = cluster.nodes.iter().map(|(port, _)| *port).collect();
    for port in ports {
        cluster.kill(port);
    }
    eventually("b's health says disconnected", SOON, || async {
        (!b.health().connected).then_some(())
    })
    .await;
    assert!(matches!(
        b.submit("job-3", |_| async { Ok(()) }).await,
        Err(ClaimError::Unavailable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_claims_and_the_jobs_end() {
    let Some(mut cluster) = Cluster::start("failover") else {
        return;
    };
    let ns = format!("cl-fail-{}", std::process::id());
    let (master, slave) = cluster.owner(slot(cluster.nodes[0].0, &ns));
    let entry = other(&cluster, &[master, slave]);
    let url = format!("redis+cluster://127.0.0.1:{entry}");
    let (a, wa) = replica(&url, &ns, "a");
    let (b, _wb) = replica(&url, &ns, "b");
    let release = Arc::new(Notify::new());
    let first = claim_blocked(&a, "nightly", &release).await;
    live_on(&b, "nightly").await;

    // A coordinated failover: the replica takes over with every write.
    let answer = cli(slave, &["cluster", "failover"]);
    assert!(answer.contains("OK"), "CLUSTER FAILOVER: {answer}");
    let deadline = Instant::now() + SOON;
    while !cli(slave, &["role"]).starts_with("master") {
        assert!(Instant::now() < deadline, "the replica never became master");
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = eventually("b's claim answered after the failover", SOON, || async {
        match b.submit("nightly", |_| async { Ok(()) }).await {
            Err(ClaimError::Unavailable { .. }) => None,
            other => Some(other),
        }
    })
    .await;
    assert!(
        matches!(held, Err(ClaimError::Held { ref replica, .. }) if replica == "a"),
        "{held:?}"
    );

    // The master of the slot is killed: its replica (the old master) is promoted.
    cluster.kill(slave);
    let deadline = Instant::now() + SOON;
    loop {
        let answer = cli(master, &["role"]);
        if answer.starts_with("master") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old master was never promoted again: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    release.notify_one();
    wa.wait("nightly").await;
    status_on(&b, "nightly", ClusterStatus::Completed).await;
    let second = claim_blocked(&b, "nightly", &release).await;
    assert!(second > first, "{second} > {first}");
    release.notify_one();
}
