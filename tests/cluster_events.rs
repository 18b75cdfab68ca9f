//! The console's `GET /events` across the cluster (features `axum` and `redis`), against a real
//! `redis-server`: two replicas `a` and `b` with their mirrors; a console over `a` streams `b`'s
//! status changes (published by `write.lua` on `{ns}:events`) and `a`'s own once each.

#![cfg(all(feature = "axum", feature = "redis"))]

mod redis_support;

use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream};
use axum::http::Request;
use background_worker::console::Console;
use background_worker::{RedisMirror, Worker};
use futures_util::StreamExt;
use serde_json::Value;
use tower::ServiceExt;

use redis_support::RedisServer;

/// The bound on the whole test's waits.
const WAIT: Duration = Duration::from_secs(20);

fn replica(url: &str, ns: &str, name: &str) -> (RedisMirror, Worker) {
    let mirror = RedisMirror::builder(url)
        .namespace(ns)
        .replica(name)
        .lease(Duration::from_secs(10))
        .build()
        .expect("valid settings");
    let worker = Worker::builder().observer(mirror.observer()).build();
    mirror.start(&worker).expect("start the mirror");
    (mirror, worker)
}

/// The `(event, job)` pairs of the stream so far, read until `done` holds or `WAIT` passes.
async fn read_until(
    body: &mut BodyDataStream,
    text: &mut String,
    deadline: Instant,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    loop {
        let events = parse(text);
        if done(&events) {
            return events;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(chunk) = tokio::time::timeout(left, body.next()).await else {
            panic!("the awaited events did not come within {WAIT:?}: {text}");
        };
        let chunk = chunk.expect("the stream goes on").expect("a chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn parse(text: &str) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(event) = line.strip_prefix("event: ") {
            name = Some(event.to_owned());
        } else if let Some(data) = line.strip_prefix("data: ") {
            if let (Some(name), Ok(job)) = (name.take(), serde_json::from_str(data)) {
                events.push((name, job));
            }
        }
    }
    events
}

fn of<'a>(events: &'a [(String, Value)], id: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|(_, job)| job["job_id"] == id)
        .map(|(name, _)| name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_every_replicas_changes_and_ours_once() {
    let Some(redis) = RedisServer::shared("events_stream_every_replicas_changes") else {
        return;
    };
    let ns = format!("t-cluster-events-{}", std::process::id());
    let (mirror_a, worker_a) = replica(&redis.url(), &ns, "a");
    let (mirror_b, worker_b) = replica(&redis.url(), &ns, "b");
    let app = Console::new(worker_a.clone()).mirror(mirror_a.clone()).router();
    let request = Request::get("/events").body(Body::empty()).expect("request");
    let response = tokio::time::timeout(WAIT, app.oneshot(request))
        .await
        .expect("the router answered in time")
        .expect("infallible");
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    let deadline = Instant::now() + WAIT;

    // b's jobs reach a's stream once a's subscription is in place (pub/sub is at most once:
    // what was published before it is missed), so b submits until one arrives.
    let mut n = 0;
    let first = loop {
        let id = format!("on-b-{n}");
        worker_b
            .submit(id.clone(), || async { Ok(()) })
            .await
            .expect("submit on b");
        let arrived = tokio::time::timeout(
            Duration::from_millis(500),
            read_until(&mut body, &mut text, deadline, |events| {
                events.iter().any(|(_, job)| job["replica"] == "b")
            }),
        )
        .await;
        if arrived.is_ok() {
            break id;
        }
        assert!(Instant::now() < deadline, "no event of b within {WAIT:?}: {text}");
        n += 1;
    };
    let events = read_until(&mut body, &mut text, deadline, |events| {
        of(events, &first).contains(&"completed")
    })
    .await;
    for (_, job) in events.iter().filter(|(_, job)| job["job_id"] == first.as_str()) {
        assert_eq!(job["replica"], "b", "{text}");
    }

    // a's own job: each change once, from a's worker, not again from Redis.
    worker_a
        .submit("on-a", || async { Ok(()) })
        .await
        .expect("submit on a");
    worker_b
        .submit("on-b-last", || async { Ok(()) })
        .await
        .expect("submit on b");
    read_until(&mut body, &mut text, deadline, |events| {
        of(events, "on-a").contains(&"completed") && of(events, "on-b-last").contains(&"completed")
    })
    .await;
    // Let anything late (a duplicate from Redis) arrive before counting: read until the
    // stream has been quiet for a second (bounded by the deadline).
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    let events = parse(&text);
    assert_eq!(of(&events, "on-a"), ["pending", "running", "completed"], "{text}");
    assert!(
        events
            .iter()
            .filter(|(_, job)| job["job_id"] == "on-a")
            .all(|(_, job)| job["replica"] == "a"),
        "{text}"
    );

    worker_a.shutdown().await;
    worker_b.shutdown().await;
    mirror_a.close(Duration::from_secs(5)).await.expect("close a");
    mirror_b.close(Duration::from_secs(5)).await.expect("close b");
}

/// Subscribers of `{ns}:events` on the server, as `PUBSUB NUMSUB` counts them.
async fn event_subscribers(url: &str, ns: &str) -> i64 {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let counts: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("{{{ns}}}:events"))
        .query_async(&mut conn)
        .await
        .expect("PUBSUB NUMSUB");
    counts.1
}

/// Polls `event_subscribers` until it reads `want`, submitting a job on `worker` between reads
/// (an event is what lets a finished stream notice it has no client); `false` after `WAIT`.
async fn subscribers_become(url: &str, ns: &str, want: i64, worker: &Worker) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    while Instant::now() < deadline {
        if event_subscribers(url, ns).await == want {
            return true;
        }
        n += 1;
        let _ = worker
            .submit(format!("nudge-{want}-{n}"), || async { Ok(()) })
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A replica reads `{ns}:events` only while its console has an `/events` client: not
/// subscribed before one connects, subscribed while it is connected, unsubscribed after it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reads_cluster_events_only_while_someone_watches() {
    let Some(redis) = RedisServer::shared("a_replica_reads_cluster_events_only_while_someone_watches") else {
        return;
    };
    let url = redis.url();
    let ns = format!("t-events-wanted-{}", std::process::id());
    let (mirror_a, worker_a) = replica(&url, &ns, "a");
    let (mirror_b, worker_b) = replica(&url, &ns, "b");
    // Both listeners are up (their cancel subscriptions are made before any events one).
    let deadline = Instant::now() + WAIT;
    while !(mirror_a.health().lease_held && mirror_b.health().lease_held) {
        assert!(Instant::now() < deadline, "no lease within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(event_subscribers(&url, &ns).await, 0, "nobody watches yet");

    let app = Console::new(worker_a.clone()).mirror(mirror_a.clone()).router();
    let request = Request::get("/events").body(Body::empty()).expect("request");
    let response = tokio::time::timeout(WAIT, app.oneshot(request))
        .await
        .expect("the router answered in time")
        .expect("infallible");
    let body = response.into_body().into_data_stream();
    assert!(
        subscribers_become(&url, &ns, 1, &worker_b).await,
        "a subscribes once a client watches"
    );
    drop(body);
    assert!(
        subscribers_become(&url, &ns, 0, &worker_b).await,
        "a unsubscribes once its last client left"
    );

    worker_a.shutdown().await;
    worker_b.shutdown().await;
    mirror_a.close(Duration::from_secs(5)).await.expect("close a");
    mirror_b.close(Duration::from_secs(5)).await.expect("close b");
}
