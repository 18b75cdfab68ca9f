//! The `03_job_server` example as a cluster: two replicas (real processes, see
//! `server_support`) and one real `redis-server` (see `redis_support`). Status, listing and
//! cancel across replicas; SIGTERM of one (its jobs end `cancelled`, not `lost`); SIGKILL of one
//! (its running job is `lost` within two leases); Redis stopped and restarted while jobs run
//! and finish (nothing lost).
//!
//! Each test starts its own `redis-server`, since the demo's namespace is fixed.

#![cfg(all(feature = "axum", feature = "redis"))]

mod redis_support;
mod server_support;

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use redis_support::RedisServer;
use server_support::Server;

/// The lease in these tests: short, so a killed replica is found quickly.
const LEASE_MS: u64 = 1_000;
const CANCEL_TIMEOUT_MS: u64 = 500;
/// The bound on any single request, even while Redis is down.
const REQUEST_BOUND: Duration = Duration::from_secs(5);
/// The bound on a status the tests wait for.
const WAIT: Duration = Duration::from_secs(15);

fn replica(redis: &RedisServer, name: &str) -> Server {
    let lease = LEASE_MS.to_string();
    let cancel = CANCEL_TIMEOUT_MS.to_string();
    Server::start(&[
        ("REDIS_URL", &redis.url()),
        ("REPLICA", name),
        ("LEASE_MS", &lease),
        ("CANCEL_TIMEOUT_MS", &cancel),
        ("SHUTDOWN_TIMEOUT_MS", "500"),
    ])
}

/// Sends `request` and returns the status and JSON body, asserting it took at most
/// [`REQUEST_BOUND`].
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let started = Instant::now();
    let response = request.send().await.expect("the request reaches the server");
    let status = response.status();
    let text = response.text().await.expect("read the body");
    let took = started.elapsed();
    assert!(took <= REQUEST_BOUND, "a request took {took:?}: {status} {text}");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {text:?} is not JSON: {e}"));
    (status, body)
}

async fn submit(client: &Client, server: &Server, body: Value) -> String {
    let (status, answer) = send(client.post(server.url("/jobs")).json(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job_id"].as_str().expect("job_id").to_owned()
}

/// Polls `GET /jobs/{id}` on `server` until `done` holds.
async fn wait_for(
    client: &Client,
    server: &Server,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, job) = send(client.get(server.url(&format!("/jobs/{id}")))).await;
        if status == StatusCode::OK && done(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never became {what}: {status} {job}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn status_is(expected: &'static str) -> impl Fn(&Value) -> bool {
    move |job| job["status"] == expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_job_view() {
    let Some(redis) = RedisServer::start("two_replicas_share_one_job_view") else {
        return;
    };
    let mut a = replica(&redis, "a");
    let b = replica(&redis, "b");
    let client = Client::new();

    // Status across replicas, with the replica in every job.
    let long = submit(&client, &a, json!({"kind": "sleep", "ms": 60_000})).await;
    let seen = wait_for(&client, &b, &long, "running on a", status_is("running")).await;
    assert_eq!(seen["replica"], "a", "{seen}");
    let failing = submit(&client, &b, json!({"kind": "fail", "message": "disk full"})).await;
    let failed = wait_for(&client, &a, &failing, "failed on b", status_is("failed")).await;
    assert_eq!(
        (&failed["replica"], &failed["message"]),
        (&json!("b"), &json!("disk full")),
        "{failed}"
    );
    let own = wait_for(&client, &a, &long, "running", status_is("running")).await;
    assert_eq!(own["replica"], "a");

    // Listing: both replicas' jobs on either, newest first.
    for server in [&a, &b] {
        let (status, list) = send(client.get(server.url("/jobs"))).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["cluster"], true, "{list}");
        let jobs: Vec<(&str, &str, &str)> = list["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|job| {
                (
                    job["job_id"].as_str().unwrap_or_default(),
                    job["status"].as_str().unwrap_or_default(),
                    job["replica"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            [(failing.as_str(), "failed", "b"), (long.as_str(), "running", "a")],
            "{list}"
        );
    }

    // Cancel on b of a's job: answered as it ended, within the cancel timeout plus 2 s.
    let asked = Instant::now();
    let (status, cancelled) = send(client.delete(b.url(&format!("/jobs/{long}")))).await;
    let took = asked.elapsed();
    assert_eq!(
        (status, &cancelled["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{cancelled}"
    );
    assert_eq!(cancelled["replica"], "a");
    assert!(
        took <= Duration::from_millis(CANCEL_TIMEOUT_MS + 2_000),
        "cancel took {took:?}"
    );
    let (_, on_a) = send(client.get(a.url(&format!("/jobs/{long}")))).await;
    assert_eq!(on_a["status"], "cancelled", "{on_a}");

    // Unknown everywhere: 404 (once Redis's data is a lease old: before, "not known yet", a 503
    // with Retry-After); not an id: 4xx.
    let unknown = uuid::Uuid::new_v4();
    for server in [&a, &b] {
        let url = server.url(&format!("/jobs/{unknown}"));
        let deadline = Instant::now() + Duration::from_millis(2 * LEASE_MS + 1_000);
        let (status, body) = loop {
            let response = client
                .get(&url)
                .send()
                .await
                .expect("the request reaches the server");
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.expect("a JSON body");
            if status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break (status, body);
            }
            assert!(retry_after.is_some(), "a 503 without Retry-After: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not known yet")),
                "{body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["error"].is_string());
        let (status, body) = send(client.delete(server.url(&format!("/jobs/{unknown}")))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = send(client.get(server.url(&format!("/jobs/{}", "x".repeat(4096))))).await;
        assert!(status.is_client_error(), "{status} {body}");
    }
    let (status, health) = send(client.get(a.url("/health"))).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(
        (
            &health["mirror"]["connected"],
            &health["mirror"]["degraded"],
            &health["mirror"]["replica"]
        ),
        (&json!(true), &json!(false), &json!("a")),
        "{health}"
    );

    // SIGTERM of a with a job running: b sees it cancelled, not lost, once a has exited.
    let last = submit(&client, &a, json!({"kind": "sleep", "ms": 60_000})).await;
    wait_for(&client, &b, &last, "running on a", status_is("running")).await;
    a.terminate();
    let exit = a
        .wait_exit(Duration::from_secs(10))
        .expect("a exits after SIGTERM");
    assert!(exit.success(), "{exit}");
    assert!(a.logs().contains("final statuses flushed"), "{}", a.logs());
    let (_, ended) = send(client.get(b.url(&format!("/jobs/{last}")))).await;
    assert_eq!(
        (&ended["status"], &ended["replica"]),
        (&json!("cancelled"), &json!("a")),
        "{ended}"
    );
    // And stays so after a's lease would have run out.
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    let (_, later) = send(client.get(b.url(&format!("/jobs/{last}")))).await;
    assert_eq!(later["status"], "cancelled", "{later}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_job_is_lost_within_two_leases() {
    let Some(redis) = RedisServer::start("a_killed_replicas_job_is_lost_within_two_leases") else {
        return;
    };
    let mut a = replica(&redis, "a");
    let b = replica(&redis, "b");
    let client = Client::new();
    let job = submit(&client, &a, json!({"kind": "sleep", "ms": 60_000})).await;
    wait_for(&client, &b, &job, "running on a", status_is("running")).await;

    a.kill();
    let killed = Instant::now();
    let lost = wait_for(&client, &b, &job, "lost", status_is("lost")).await;
    let took = killed.elapsed();
    assert_eq!(lost["replica"], "a", "{lost}");
    assert!(took <= Duration::from_millis(2 * LEASE_MS), "lost after {took:?}");
    let (_, list) = send(client.get(b.url("/jobs"))).await;
    assert_eq!(list["jobs"][0]["status"], "lost", "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_job() {
    let Some(mut redis) = RedisServer::start("a_redis_outage_loses_no_job") else {
        return;
    };
    let a = replica(&redis, "a");
    let b = replica(&redis, "b");
    let client = Client::builder().timeout(REQUEST_BOUND).build().expect("client");
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(submit(&client, &a, json!({"kind": "sleep", "ms": 1_500})).await);
    }
    wait_for(&client, &b, &jobs[2], "running on a", status_is("running")).await;

    redis.stop();
    // a goes on: accepts and runs jobs, answers for its own, stays healthy but degraded.
    jobs.push(submit(&client, &a, json!({"kind": "sleep", "ms": 10})).await);
    jobs.push(submit(&client, &a, json!({"kind": "fail", "message": "meanwhile"})).await);
    for id in &jobs {
        wait_for(&client, &a, id, "finished on a", |job| {
            matches!(job["status"].as_str(), Some("completed" | "failed"))
        })
        .await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, health) = send(client.get(a.url("/health"))).await;
        assert_eq!(status, StatusCode::OK, "{health}");
        if health["mirror"]["degraded"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never degraded: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = send(client.get(a.url(&format!("/jobs/{}", uuid::Uuid::new_v4())))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, list) = send(client.get(a.url("/jobs"))).await;
    assert_eq!(
        (status, &list["cluster"], &list["count"]),
        (StatusCode::OK, &json!(false), &json!(5)),
        "{list}"
    );

    // Redis comes back (empty): within 5 s every job's final status is visible on b.
    redis.restart();
    let back = Instant::now();
    for id in &jobs {
        let deadline = back + Duration::from_secs(5);
        loop {
            let (status, job) = send(client.get(b.url(&format!("/jobs/{id}")))).await;
            if status == StatusCode::OK && matches!(job["status"].as_str(), Some("completed" | "failed")) {
                assert_eq!(job["replica"], "a");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not back within 5 s: {status} {job}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    eprintln!("every status visible {:?} after redis came back", back.elapsed());
    let (_, health) = send(client.get(a.url("/health"))).await;
    assert!(health["mirror"]["resyncs"].as_u64() >= Some(1), "{health}");
}
