//! Fault injection against real processes (issue 25's proof): one real `redis-server`, two
//! `03_job_server` replicas (`server_support`), each talking to Redis through its own TCP proxy
//! (`fault_support::Proxy`), and polling clients on both replicas. Each scenario injects one
//! fault (SIGSTOP/SIGCONT of a replica, a black-holed Redis link, `FLUSHALL`, Redis killed and
//! restarted with and without AOF), records a history (every answer to the pollers with its
//! times; every start and end of a task body and every "run found dead", from the replicas'
//! logs), and hands it to the checker (`fault_support/checker.rs`), which states the invariants.
//!
//! Each test starts its own `redis-server` (they flush and kill it). Leases are 1 s, cancel and
//! shutdown timeouts 1 s.

#![cfg(all(feature = "serde", feature = "redis"))]

mod fault_support;
mod redis_support;
mod server_support;

use std::time::Duration;

use reqwest::Client;
use serde_json::{json, Value};
use tokio::sync::watch;

use fault_support::checker::{assert_holds, History, Limits};
use fault_support::{history, now_ms, signal, Proxy, Recorder};
use redis_support::RedisServer;
use server_support::Server;

const LEASE_MS: u64 = 1_000;
const CANCEL_TIMEOUT_MS: u64 = 1_000;

const LIMITS: Limits = Limits {
    // The cancel timeout, and the time to learn of the death (a renewal, at most a second)
    // and to spawn the cancels.
    cancel: CANCEL_TIMEOUT_MS + 1_500,
    settle: 2_000,
    request: 5_000,
};

/// A cluster of two replicas, `a` and `b`, each behind its own proxy to one Redis.
struct Cluster {
    redis: RedisServer,
    /// The server's directory (its AOF), removed at the end.
    dir: std::path::PathBuf,
    proxies: [Proxy; 2],
    replicas: [Server; 2],
    client: Client,
    recorder: Recorder,
    paused: [watch::Sender<bool>; 2],
    stop: watch::Sender<bool>,
    history: History,
}

const NAMES: [&str; 2] = ["a", "b"];

impl Cluster {
    async fn start(test: &str, aof: bool) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("bw-faults-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the AOF");
        let path = dir.clone();
        let dir = dir.display().to_string();
        let extra: Vec<&str> = if aof {
            vec!["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir]
        } else {
            vec!["--dir", &dir]
        };
        let redis = RedisServer::start_with(test, &extra)?;
        let port = redis
            .url()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the test server's port");
        let proxies = [Proxy::start(port).await, Proxy::start(port).await];
        let replicas = [0, 1].map(|i| {
            Server::start(&[
                ("REDIS_URL", &proxies[i].url()),
                ("REPLICA", NAMES[i]),
                ("LEASE_MS", &LEASE_MS.to_string()),
                ("CANCEL_TIMEOUT_MS", &CANCEL_TIMEOUT_MS.to_string()),
                ("SHUTDOWN_TIMEOUT_MS", "1000"),
            ])
        });
        Some(Self {
            redis,
            dir: path,
            proxies,
            replicas,
            client: Client::new(),
            recorder: Recorder::default(),
            paused: [watch::Sender::new(false), watch::Sender::new(false)],
            stop: watch::Sender::new(false),
            history: History::default(),
        })
    }

    /// Submits a `sleep` job of `ms` on replica `i`; waits until both replicas see it, so that
    /// every job polled exists (a 404 later is a false one).
    async fn submit(&self, i: usize, ms: u64) -> String {
        let response = self
            .client
            .post(self.replicas[i].url("/jobs"))
            .json(&json!({"kind": "sleep", "ms": ms}))
            .send()
            .await
            .expect("submit");
        let body: Value = response.json().await.expect("JSON");
        let id = body["job_id"].as_str().expect("job_id").to_owned();
        for server in &self.replicas {
            let deadline = now_ms() + 10_000;
            loop {
                let answer = self
                    .client
                    .get(server.url(&format!("/jobs/{id}")))
                    .send()
                    .await
                    .expect("look the job up");
                if answer.status() == 200 {
                    break;
                }
                assert!(
                    now_ms() < deadline,
                    "job {id} never became visible on {}",
                    server.base
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        id
    }

    /// Starts polling every job on both replicas.
    fn poll(&self, jobs: &[String]) -> Vec<tokio::task::JoinHandle<()>> {
        (0..2)
            .map(|i| {
                self.recorder.poll(
                    self.client.clone(),
                    NAMES[i].to_owned(),
                    self.replicas[i].base.clone(),
                    jobs.to_vec(),
                    self.paused[i].subscribe(),
                    self.stop.subscribe(),
                )
            })
            .collect()
    }

    fn pause(&self, i: usize) -> u64 {
        self.paused[i].send_replace(true);
        signal(self.replicas[i].pid(), "STOP");
        now_ms()
    }

    fn resume(&self, i: usize) -> u64 {
        signal(self.replicas[i].pid(), "CONT");
        self.paused[i].send_replace(false);
        now_ms()
    }

    async fn health(&self, i: usize) -> Value {
        let response = self
            .client
            .get(self.replicas[i].url("/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("GET /health");
        response.json::<Value>().await.expect("JSON")["mirror"].clone()
    }

    /// Stops the pollers, reads the logs, checks the history.
    async fn finish(mut self, scenario: &str, pollers: Vec<tokio::task::JoinHandle<()>>) -> History {
        self.stop.send_replace(true);
        for poller in pollers {
            tokio::time::timeout(Duration::from_secs(15), poller)
                .await
                .expect("a poller ended")
                .expect("a poller did not panic");
        }
        let logs = [("a", self.replicas[0].logs()), ("b", self.replicas[1].logs())];
        let mut recorded = history(&self.recorder, &logs);
        recorded.paused = std::mem::take(&mut self.history.paused);
        recorded.isolated = std::mem::take(&mut self.history.isolated);
        recorded.healed = self.history.healed;
        recorded.end = now_ms();
        assert!(
            !recorded.bodies.is_empty(),
            "{scenario}: no body starts in the logs (the demo logs `job body started`)"
        );
        assert_holds(scenario, &recorded, LIMITS);
        eprintln!(
            "{scenario}: the invariants hold over {} answers, {} bodies, {} runs found dead",
            recorded.answers.len(),
            recorded.bodies.len(),
            recorded.deaths.len()
        );
        drop(self.redis);
        let _ = std::fs::remove_dir_all(&self.dir);
        recorded
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Replica `a` frozen for three leases with two running jobs, a cancel of one of them on `b`
/// meanwhile. `a`'s jobs must be `lost` for good, everywhere (`a` included, once it thaws), the
/// cancel must hold, and `a` must stop their bodies once it finds its run dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replicas_jobs_stay_lost() {
    let Some(mut cluster) = Cluster::start("paused", false).await else {
        return;
    };
    let jobs = vec![
        cluster.submit(0, 7_000).await,
        cluster.submit(0, 7_000).await,
        cluster.submit(1, 3_000).await,
    ];
    let pollers = cluster.poll(&jobs);
    sleep_ms(500).await;
    let stopped = cluster.pause(0);
    sleep_ms(1_500).await;
    let cancel = cluster
        .recorder
        .ask(
            &cluster.client,
            "b",
            &cluster.replicas[1].base,
            "DELETE",
            &jobs[0],
        )
        .await;
    assert_ne!(cancel.code, 404, "{cancel:?}");
    sleep_ms(1_500).await;
    let resumed = cluster.resume(0);
    cluster.history.paused.push(("a".into(), stopped, resumed));
    cluster
        .history
        .isolated
        .push(("a".into(), stopped, resumed + 2 * LEASE_MS));
    cluster.history.healed = resumed;
    sleep_ms(7_000).await;
    let health = cluster.health(0).await;
    let recorded = cluster.finish("a paused replica", pollers).await;
    assert!(health["runs_lost"].as_u64() >= Some(1), "{health}");
    assert!(
        recorded
            .answers
            .iter()
            .any(|answer| answer.job == jobs[1] && answer.status.as_deref() == Some("lost")),
        "a's job was never seen lost"
    );
}

/// Replica `a`'s Redis link black-holed (no reset, no answer) for three leases: its health says
/// so within a lease; its jobs are `lost` for good; the partition heals visibly (a new run,
/// the old run's bodies stopped); the cancel accepted meanwhile holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_replica_heals_visibly() {
    let Some(mut cluster) = Cluster::start("black_hole", false).await else {
        return;
    };
    let jobs = vec![
        cluster.submit(0, 7_000).await,
        cluster.submit(0, 7_000).await,
        cluster.submit(1, 3_000).await,
    ];
    let pollers = cluster.poll(&jobs);
    sleep_ms(500).await;
    let cut = now_ms();
    cluster.proxies[0].black_hole();
    // Health tells the truth within a lease (and at most 2 s).
    let mut degraded_after = None;
    let mut unheld_after = None;
    while now_ms() < cut + 3_000 && (degraded_after.is_none() || unheld_after.is_none()) {
        let health = cluster.health(0).await;
        let since = now_ms() - cut;
        if health["degraded"] == true && degraded_after.is_none() {
            degraded_after = Some(since);
        }
        if health["lease_held"] == false && unheld_after.is_none() {
            unheld_after = Some(since);
        }
        sleep_ms(50).await;
    }
    let cancel = cluster
        .recorder
        .ask(
            &cluster.client,
            "b",
            &cluster.replicas[1].base,
            "DELETE",
            &jobs[0],
        )
        .await;
    assert_ne!(cancel.code, 404, "{cancel:?}");
    sleep_ms(3_000u64.saturating_sub(now_ms() - cut)).await;
    cluster.proxies[0].heal();
    let healed = now_ms();
    cluster
        .history
        .isolated
        .push(("a".into(), cut, healed + 2 * LEASE_MS));
    cluster.history.healed = healed;
    sleep_ms(7_000).await;
    let health = cluster.health(0).await;
    let recorded = cluster.finish("a black-holed replica", pollers).await;
    assert!(
        // One lease (at most 2 s), and the polling's granularity under load.
        degraded_after.is_some_and(|ms| ms <= LEASE_MS.min(2_000) + 500),
        "degraded only after {degraded_after:?} ms"
    );
    assert!(
        unheld_after.is_some_and(|ms| ms <= LEASE_MS + 700),
        "lease_held false only after {unheld_after:?} ms"
    );
    assert!(health["runs_lost"].as_u64() >= Some(1), "{health}");
    assert!(
        recorded
            .answers
            .iter()
            .any(|answer| answer.job == jobs[1] && answer.status.as_deref() == Some("lost")),
        "a's job was never seen lost"
    );
}

/// Scenarios where Redis forgets or restarts while both replicas run jobs: nobody is `lost`, no
/// `404` for a job that exists, every job ends visible with its true status.
async fn redis_forgets(test: &str, aof: bool, fault: impl AsyncFnOnce(&mut Cluster) -> u64) {
    let Some(mut cluster) = Cluster::start(test, aof).await else {
        return;
    };
    let jobs = vec![
        cluster.submit(0, 4_000).await,
        cluster.submit(1, 4_000).await,
        cluster.submit(0, 1_500).await,
    ];
    let pollers = cluster.poll(&jobs);
    sleep_ms(500).await;
    let healed = fault(&mut cluster).await;
    cluster.history.healed = healed;
    sleep_ms(6_000).await;
    let recorded = cluster.finish(test, pollers).await;
    for job in &jobs {
        assert!(
            !recorded
                .answers
                .iter()
                .any(|answer| answer.job == *job && answer.status.as_deref() == Some("lost")),
            "{test}: {job} was reported lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushall_is_not_a_death() {
    redis_forgets("flushall", false, async |cluster| {
        let mut conn = cluster.redis.client().await;
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut conn)
            .await
            .expect("FLUSHALL");
        now_ms()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_without_aof_is_not_a_death() {
    redis_forgets("restart_empty", false, async |cluster| {
        cluster.redis.stop();
        sleep_ms(2_000).await;
        cluster.redis.restart();
        now_ms()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_with_aof_is_not_a_death() {
    redis_forgets("restart_aof", true, async |cluster| {
        cluster.redis.stop();
        sleep_ms(2_000).await;
        cluster.redis.restart();
        now_ms()
    })
    .await;
}
