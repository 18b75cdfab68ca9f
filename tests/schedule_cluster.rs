//! One schedule on three `03_job_server` replicas (real processes, `server_support`) sharing one
//! real `redis-server` (`redis_support`): `--every t=200`, each tick a claimed submission.
//!
//! What it proves, from the runs each replica logged (`scheduled run started job_id=t@MS`):
//! - no tick ran twice, on one replica or on two (the claim is once per tick, even for a
//!   replica that asks after the run ended: one replica is stopped (SIGSTOP) three times for
//!   500 ms, and wakes up asking for a tick the others already ran);
//! - every tick ran, from the first run to the SIGKILL of one replica, and again from one
//!   period plus the lease after it; no gap between two runs exceeds one period plus the lease;
//! - the clock: the replicas, started at different moments, name the same ticks (every run id
//!   is on the 200 ms grid of the Unix epoch, each survivor counts ticks another one ran as
//!   `run_elsewhere`, and their `next_run` agree), from the tick's own time;
//! - the console shows it: `GET /jobs?schedule=t` lists runs of every replica, newest first,
//!   each with `"schedule"` and `"scheduled_at"`; `GET /schedules` the schedule.

#![cfg(all(feature = "axum", feature = "redis"))]

mod redis_support;
mod server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode};
use serde_json::Value;

use redis_support::RedisServer;
use server_support::Server;

const PERIOD_MS: u64 = 200;
const LEASE_MS: u64 = 1_000;
/// How long the schedule runs before the kill, and after it.
const PHASE: Duration = Duration::from_secs(5);
/// How long a replica is stopped (SIGSTOP) at a time: over two periods, under the lease.
const STALL: Duration = Duration::from_millis(500);
/// The bound on any single request.
const REQUEST_BOUND: Duration = Duration::from_secs(5);
/// The bound on the first run (the namespace's epoch is young for one lease).
const FIRST_RUN: Duration = Duration::from_secs(15);

fn replica(redis: &RedisServer, name: &str) -> Server {
    let lease = LEASE_MS.to_string();
    let every = format!("t={PERIOD_MS}");
    Server::start(&[
        ("REDIS_URL", &redis.url()),
        ("REPLICA", name),
        ("LEASE_MS", &lease),
        ("EVERY", &every),
        ("SHUTDOWN_TIMEOUT_MS", "500"),
    ])
}

/// Sends `SIG<name>` to `server` (through `kill`, so the test needs no libc).
fn signal(server: &Server, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed: {status}");
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

async fn get(client: &Client, url: String) -> (StatusCode, Value) {
    let started = Instant::now();
    let response = tokio::time::timeout(REQUEST_BOUND, client.get(&url).send())
        .await
        .unwrap_or_else(|_| panic!("GET {url} took over {REQUEST_BOUND:?}"))
        .expect("the request reaches the server");
    let status = response.status();
    let text = response.text().await.expect("read the body");
    assert!(
        started.elapsed() <= REQUEST_BOUND,
        "GET {url} took {:?}",
        started.elapsed()
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {text:?} is not JSON: {e}"));
    (status, body)
}

/// The ticks (ms) whose run `server` logged as started.
fn started_ticks(server: &Server) -> Vec<u64> {
    server
        .logs()
        .lines()
        .filter(|line| line.contains("scheduled run started"))
        .filter_map(|line| {
            let rest = &line[line.find("job_id=t@")? + "job_id=t@".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_each_tick_once_and_go_on_after_a_kill() {
    let Some(redis) = RedisServer::start("three_replicas_run_each_tick_once") else {
        return;
    };
    let client = Client::new();
    // Started one after the other, at moments that are not on the tick grid.
    let mut replicas = Vec::new();
    for name in ["r0", "r1", "r2"] {
        replicas.push(replica(&redis, name));
        tokio::time::sleep(Duration::from_millis(PERIOD_MS * 3 / 4)).await;
    }

    // The first run (the namespace is new: claims wait out one lease).
    let deadline = Instant::now() + FIRST_RUN;
    loop {
        let (status, page) = get(&client, replicas[1].url("/jobs?schedule=t&limit=5")).await;
        if status == StatusCode::OK && page["count"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no run within {FIRST_RUN:?}: {status} {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(PHASE / 2).await;
    // A replica that stalls (a pause shorter than its lease) wakes up past ticks the others
    // ran: it asks for the latest one ([`Missed::RunLatest`]) and must not run it again.
    for _ in 0..3 {
        signal(&replicas[1], "STOP");
        tokio::time::sleep(STALL).await;
        signal(&replicas[1], "CONT");
        tokio::time::sleep(Duration::from_millis(4 * PERIOD_MS)).await;
    }

    // The clock: the replicas agree on the next tick (read within one period of each other).
    let mut next_runs = Vec::new();
    for server in &replicas {
        let (status, list) = get(&client, server.url("/schedules")).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["count"], 1, "{list}");
        let schedule = &list["schedules"][0];
        assert_eq!(
            (schedule["name"].as_str(), schedule["paused"].as_bool()),
            (Some("t"), Some(false))
        );
        assert_eq!(schedule["cadence"], "every 200 ms", "{schedule}");
        let next = schedule["next_run"].as_u64().expect("next_run");
        assert_eq!(next % PERIOD_MS, 0, "next_run {next} is off the grid");
        next_runs.push(next);
    }
    let spread = next_runs.iter().max().unwrap() - next_runs.iter().min().unwrap();
    assert!(
        spread <= 2 * PERIOD_MS,
        "the replicas disagree on the next tick: {next_runs:?}"
    );

    let killed_at = now_ms();
    replicas[0].kill();
    tokio::time::sleep(PHASE).await;
    let ended_at = now_ms();

    // The survivors each ran ticks, and counted the ones another replica ran.
    for server in &replicas[1..] {
        let (_, list) = get(&client, server.url("/schedules")).await;
        let schedule = &list["schedules"][0];
        assert!(schedule["runs"].as_u64().unwrap() > 0, "{schedule}");
        assert!(schedule["run_elsewhere"].as_u64().unwrap() > 0, "{schedule}");
        let last = &schedule["last_run"];
        assert_eq!(last["schedule"], "t", "{schedule}");
    }
    // A schedule's runs across the cluster, newest first, each naming its tick.
    let (status, page) = get(&client, replicas[2].url("/jobs?schedule=t&limit=100")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let jobs = page["jobs"].as_array().expect("jobs");
    assert!(!jobs.is_empty(), "{page}");
    let mut owners = BTreeSet::new();
    let mut previous = u64::MAX;
    for job in jobs {
        let at = job["scheduled_at"].as_u64().expect("scheduled_at");
        assert_eq!(job["schedule"], "t", "{job}");
        assert_eq!(job["job_id"].as_str(), Some(format!("t@{at}").as_str()), "{job}");
        assert!(at < previous, "not newest first: {page}");
        previous = at;
        owners.insert(job["replica"].as_str().expect("replica").to_owned());
    }
    assert!(owners.len() >= 2, "the runs of one replica only: {owners:?}");

    for server in &replicas[1..] {
        server.terminate();
    }
    for server in &mut replicas[1..] {
        assert!(
            server.wait_exit(Duration::from_secs(10)).is_some(),
            "a replica did not exit"
        );
    }

    // Every run each replica started, by tick.
    let mut runs: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (server, name) in replicas.iter().zip(["r0", "r1", "r2"]) {
        for tick in started_ticks(server) {
            runs.entry(tick).or_default().push(name);
        }
    }
    let twice: Vec<_> = runs.iter().filter(|(_, on)| on.len() > 1).collect();
    assert!(twice.is_empty(), "ticks run more than once: {twice:?}");
    assert!(
        runs.keys().all(|tick| tick % PERIOD_MS == 0),
        "a tick off the grid: {runs:?}"
    );
    for name in ["r0", "r1", "r2"] {
        assert!(
            runs.values().any(|on| on[0] == name),
            "{name} ran no tick: {runs:?}"
        );
    }

    let first = *runs.keys().next().expect("runs");
    let last = *runs.keys().next_back().expect("runs");
    assert!(
        last + PERIOD_MS + LEASE_MS >= ended_at,
        "the last run {last}, the end {ended_at}"
    );
    let mut missing = Vec::new();
    let mut tick = first;
    while tick <= last {
        if !runs.contains_key(&tick) {
            missing.push(tick);
        }
        tick += PERIOD_MS;
    }
    // Around the kill, at most the ticks of one period plus the lease may be missing (a tick
    // the killed replica claimed, and a claim in flight); everywhere else, none.
    let around_kill = killed_at.saturating_sub(2 * PERIOD_MS)..=killed_at + PERIOD_MS + LEASE_MS;
    let unexplained: Vec<_> = missing
        .iter()
        .filter(|tick| !around_kill.contains(tick))
        .collect();
    assert!(
        unexplained.is_empty(),
        "ticks that ran nowhere: {unexplained:?} (killed at {killed_at})"
    );
    let ticks: Vec<u64> = runs.keys().copied().collect();
    let gap = ticks.windows(2).map(|pair| pair[1] - pair[0]).max().unwrap_or(0);
    assert!(gap <= PERIOD_MS + LEASE_MS, "a gap of {gap} ms between two runs");
    // And the ticks went on after the kill, run by the survivors.
    let after: Vec<_> = runs.range(killed_at + PERIOD_MS + LEASE_MS..).collect();
    assert!(after.len() >= 10, "too few ticks after the kill: {after:?}");
    assert!(
        after.iter().all(|(_, on)| on[0] != "r0"),
        "the killed replica ran: {after:?}"
    );
    eprintln!(
        "{} ticks from {first} to {last}: {} missing ({missing:?}), killed at {killed_at}, largest gap {gap} ms",
        runs.len(),
        missing.len()
    );
}

/// `--every` refuses what is not `NAME=MS` with a period from 1 ms to a day, and a name the
/// worker refuses, with a one-line reason and exit code 2.
#[test]
fn bad_every_flags_exit_2() {
    for (every, reason) in [
        ("t", "must be NAME=MS"),
        ("=100", "must not be empty"),
        ("t=0", "at least 1 ms"),
        ("t=x", "whole number"),
        ("t=86400001", "at most 86400000 ms"),
        ("a@b=100", "a@b"),
    ] {
        let output = server_support::run_to_end(&["--every", every], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "--every {every}: {stderr}");
        assert!(stderr.contains(reason), "--every {every}: {stderr}");
    }
}
