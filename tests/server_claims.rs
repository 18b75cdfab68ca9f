//! The `03_job_server` example's client ids (issue 26, the demo): real demo processes (see
//! `server_support`) and, with `--redis`, a real `redis-server` per test (see `redis_support`;
//! the demo's namespace is fixed).
//!
//! What each test proves:
//! - `a_live_client_id_is_refused_across_replicas`: a client id is claimed for the cluster: the
//!   same id from another replica gets `409` with the holder's job (`"replica": "a"`, its
//!   `"fencing_token"`, as `GET` shows it); an `Idempotency-Key` retry gets `409` too and the
//!   body runs once; every view of the job (GET on both replicas, the listing, its event on
//!   `/events`) carries the same `fencing_token`; once the job is terminal the id is granted
//!   again, on either replica, with a greater token each time, and `GET` on the old holder
//!   shows the newest submission (this caught the console answering a stale local job).
//! - `a_claimed_submission_is_refused_while_redis_is_down`: with Redis stopped, a claimed POST
//!   gets `503` with `Retry-After` within the request bound and its body never starts, while an
//!   unclaimed POST (UUID) is still accepted and runs.
//! - `without_redis_the_local_rule_gives_the_same_409`: one process, no Redis: the same `409`
//!   shape with the job as `GET` shows it (no `fencing_token`), and the id rules (`400` for an
//!   empty or over-long id, or a header and body that disagree).

#![cfg(all(feature = "axum", feature = "redis"))]

mod redis_support;
mod server_support;

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use redis_support::RedisServer;
use server_support::Server;

const LEASE_MS: u64 = 1_000;
/// The bound on any single request, even while Redis is down.
const REQUEST_BOUND: Duration = Duration::from_secs(5);
/// The bound on a state the tests wait for.
const WAIT: Duration = Duration::from_secs(20);

fn replica(redis: &RedisServer, name: &str) -> Server {
    let lease = LEASE_MS.to_string();
    Server::start(&[
        ("REDIS_URL", &redis.url()),
        ("REPLICA", name),
        ("LEASE_MS", &lease),
        ("CANCEL_TIMEOUT_MS", "500"),
        ("SHUTDOWN_TIMEOUT_MS", "500"),
    ])
}

/// Sends `request`: the status, headers and JSON body, asserting it took at most
/// [`REQUEST_BOUND`].
async fn send(request: RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let started = Instant::now();
    let response = request.send().await.expect("the request reaches the server");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the body");
    let took = started.elapsed();
    assert!(took <= REQUEST_BOUND, "a request took {took:?}: {status} {text}");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {text:?} is not JSON: {e}"));
    (status, headers, body)
}

/// POSTs `body` with the `Idempotency-Key` `key` until it is not a `503` (a fresh or restarted
/// Redis answers "not known yet" for one lease), within [`WAIT`].
async fn post_claimed(client: &Client, server: &Server, key: &str, body: &Value) -> (StatusCode, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let request = client
            .post(server.url("/jobs"))
            .header("idempotency-key", key)
            .json(body);
        let (status, headers, answer) = send(request).await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return (status, answer);
        }
        assert!(
            headers.contains_key("retry-after"),
            "a 503 without Retry-After: {answer}"
        );
        assert!(
            Instant::now() < deadline,
            "{key} still refused with 503: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `GET /jobs/{id}` on `server` until `done` holds.
async fn wait_for(client: &Client, server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, job) = send(client.get(server.url(&format!("/jobs/{id}")))).await;
        if status == StatusCode::OK && done(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never got there: {status} {job}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `data:` of the next Server-Sent Event about job `id` on `events`, within [`WAIT`].
async fn next_event_of(events: &mut reqwest::Response, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no event about {id} within {WAIT:?}: {text}"))
            .expect("read /events")
            .unwrap_or_else(|| panic!("/events ended: {text}"));
        text.push_str(&String::from_utf8_lossy(&chunk));
        let found = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|job| job["job_id"] == id);
        if let Some(job) = found {
            return job;
        }
    }
}

/// How many times `server` logged the start of the body of job `id`.
fn body_starts(server: &Server, id: &str) -> usize {
    let needle = format!("job_id={id}");
    server
        .logs()
        .lines()
        .filter(|line| {
            line.contains("job body started") && line.split_whitespace().any(|word| word == needle)
        })
        .count()
}

fn client() -> Client {
    Client::builder().timeout(REQUEST_BOUND).build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_client_id_is_refused_across_replicas() {
    let Some(redis) = RedisServer::start("a_live_client_id_is_refused_across_replicas") else {
        return;
    };
    let a = replica(&redis, "a");
    let b = replica(&redis, "b");
    let client = client();
    let id = "daily-report-2026-12-06";
    let long = json!({"kind": "sleep", "ms": 60_000});
    // Its events on a, from before the submission (a client without a request timeout).
    let mut events = Client::new()
        .get(a.url("/events"))
        .send()
        .await
        .expect("GET /events");

    let (status, accepted) = post_claimed(&client, &a, id, &long).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["job_id"], id);
    let first = accepted["fencing_token"]
        .as_u64()
        .expect("a claimed job has a fencing_token");
    let running = wait_for(&client, &b, id, |job| job["status"] == "running").await;
    assert_eq!(
        (&running["replica"], &running["fencing_token"]),
        (&json!("a"), &json!(first)),
        "{running}"
    );
    let event = next_event_of(&mut events, id).await;
    assert_eq!(event["fencing_token"], first, "/events: {event}");
    drop(events);

    // The same id from b: 409 naming a, with the job as GET shows it.
    let (status, conflict) =
        post_claimed(&client, &b, id, &json!({"kind": "sleep", "ms": 10, "id": id})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert!(
        conflict["error"].as_str().is_some_and(|e| e.contains("\"a\"")),
        "{conflict}"
    );
    let job = &conflict["job"];
    assert_eq!(
        (
            &job["job_id"],
            &job["replica"],
            &job["fencing_token"],
            &job["status"]
        ),
        (&json!(id), &json!("a"), &json!(first), &json!("running")),
        "{conflict}"
    );

    // A client's retry of the same POST on a: 409, not a second run.
    let (status, retry) = post_claimed(&client, &a, id, &long).await;
    assert_eq!(status, StatusCode::CONFLICT, "{retry}");
    assert_eq!(
        (&retry["job"]["replica"], &retry["job"]["fencing_token"]),
        (&json!("a"), &json!(first)),
        "{retry}"
    );

    // Every view carries the token: GET on a, the listing on b.
    let on_a = wait_for(&client, &a, id, |_| true).await;
    assert_eq!(on_a["fencing_token"], first, "{on_a}");
    let (status, _, list) = send(client.get(b.url("/jobs"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|job| job["job_id"] == id);
    assert_eq!(
        listed.map(|job| &job["fencing_token"]),
        Some(&json!(first)),
        "{list}"
    );

    // Terminal (cancelled from b): the id is granted again, on b, with a greater token.
    let (status, _, cancelled) = send(client.delete(b.url(&format!("/jobs/{id}")))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    wait_for(&client, &b, id, |job| job["status"] == "cancelled").await;
    let (status, again) = post_claimed(&client, &b, id, &json!({"kind": "sleep", "ms": 10})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let second = again["fencing_token"].as_u64().expect("fencing_token");
    assert!(second > first, "tokens {first} then {second}");
    let done = wait_for(&client, &a, id, |job| job["status"] == "completed").await;
    assert_eq!(
        (&done["replica"], &done["fencing_token"]),
        (&json!("b"), &json!(second)),
        "{done}"
    );

    // Then once more on a: greater again. Each grant ran its body exactly once.
    let (status, third) = post_claimed(&client, &a, id, &json!({"kind": "sleep", "ms": 10})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{third}");
    let third = third["fencing_token"].as_u64().expect("fencing_token");
    assert!(third > second, "tokens {second} then {third}");
    wait_for(&client, &b, id, |job| {
        job["status"] == "completed" && job["fencing_token"] == third
    })
    .await;
    assert_eq!(
        (body_starts(&a, id), body_starts(&b, id)),
        (2, 1),
        "body starts on a and b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_submission_is_refused_while_redis_is_down() {
    let Some(mut redis) = RedisServer::start("a_claimed_submission_is_refused_while_redis_is_down") else {
        return;
    };
    let a = replica(&redis, "a");
    let client = client();
    // Past the fresh namespace's grace: claims are granted.
    let (status, warm) = post_claimed(&client, &a, "warm-up", &json!({"kind": "sleep", "ms": 10})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{warm}");

    redis.stop();
    let id = "user-sync-42";
    let request = client
        .post(a.url("/jobs"))
        .header("idempotency-key", id)
        .json(&json!({"kind": "sleep", "ms": 10}));
    let (status, headers, refused) = send(request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert_eq!(
        headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..]),
        "{refused}"
    );
    assert!(
        refused["error"].as_str().is_some_and(|e| e.contains("redis")),
        "{refused}"
    );

    // An unclaimed job still runs meanwhile.
    let (status, _, accepted) = send(
        client
            .post(a.url("/jobs"))
            .json(&json!({"kind": "sleep", "ms": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let uuid = accepted["job_id"].as_str().expect("job_id").to_owned();
    assert!(accepted.get("fencing_token").is_none(), "{accepted}");
    let done = wait_for(&client, &a, &uuid, |job| job["status"] == "completed").await;
    assert!(
        done.get("fencing_token").is_none(),
        "an unclaimed job has no fencing_token: {done}"
    );

    // The refused one never ran, and is not this worker's.
    let (status, _, lookup) = send(client.get(a.url(&format!("/jobs/{id}")))).await;
    assert_ne!(status, StatusCode::OK, "{lookup}");
    assert_eq!(body_starts(&a, id), 0, "the refused job's body started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_local_rule_gives_the_same_409() {
    let server = Server::start(&[]);
    let client = client();
    let id = "local-report-1";
    let request = client
        .post(server.url("/jobs"))
        .header("idempotency-key", id)
        .json(&json!({"kind": "sleep", "ms": 60_000}));
    let (status, headers, accepted) = send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted, json!({"job_id": id}));
    assert_eq!(headers["location"], format!("/jobs/{id}"));
    let running = wait_for(&client, &server, id, |job| job["status"] == "running").await;

    // The body's "id" this time, same rule.
    let (status, _, conflict) = send(
        client
            .post(server.url("/jobs"))
            .json(&json!({"kind": "fail", "message": "x", "id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["job"]["job_id"], id, "{conflict}");
    assert_eq!(conflict["job"]["replica"], Value::Null, "{conflict}");
    assert_eq!(
        conflict["job"]["submitted_at_ms"], running["submitted_at_ms"],
        "{conflict}"
    );
    assert!(conflict["job"].get("fencing_token").is_none(), "{conflict}");
    assert_eq!(body_starts(&server, id), 1);

    // The id rules.
    let cases = [
        ("", json!({"kind": "panic"}), "empty header"),
        (&*"x".repeat(129), json!({"kind": "panic"}), "129-byte header"),
        ("a", json!({"kind": "panic", "id": "b"}), "header and body differ"),
    ];
    for (key, body, what) in cases {
        let request = client
            .post(server.url("/jobs"))
            .header("idempotency-key", key)
            .json(&body);
        let (status, _, answer) = send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.len() < 200),
            "{what}: {answer}"
        );
    }
    let (status, _, answer) = send(
        client
            .post(server.url("/jobs"))
            .json(&json!({"kind": "panic", "id": ""})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty body id: {answer}");
    // Equal header and body ids are one id.
    let request = client
        .post(server.url("/jobs"))
        .header("idempotency-key", "same")
        .json(&json!({"kind": "sleep", "ms": 10, "id": "same"}));
    let (status, _, answer) = send(request).await;
    assert_eq!(
        (status, &answer["job_id"]),
        (StatusCode::ACCEPTED, &json!("same")),
        "{answer}"
    );
}
