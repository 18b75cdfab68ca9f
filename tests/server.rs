//! The `03_job_server` example as a running server: every endpoint's happy and bad-input paths,
//! failing, panicking and cancelled jobs, and SIGTERM while jobs are in flight.
//!
//! These tests start the real binary on an ephemeral loopback port (see `server_support`), except
//! `submissions_while_draining_get_503`, which serves the example's router in-process to hold the
//! worker in its drain deterministically.

#![cfg(feature = "axum")]

mod server_support;

#[path = "../examples/03_job_server/jobs.rs"]
#[allow(clippy::duplicate_mod)]
mod jobs;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use background_worker::console::Console;
use background_worker::{TaskOutcome, TaskStatus, Worker};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use server_support::{run_to_end, Server};

/// How long one job may take to reach the status a test waits for. Generous: CI machines are slow.
const WAIT: Duration = Duration::from_secs(15);
/// The server's shutdown timeout in these tests.
const SHUTDOWN_TIMEOUT_MS: u64 = 1_000;
/// The bound on the whole SIGTERM-to-exit time: shutdown timeout plus a generous margin.
const EXIT_BOUND: Duration = Duration::from_secs(10);

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the request reaches the server");
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("read the body");
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content type {content_type:?}, body {text:?}"
    );
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: body {text:?} is not JSON: {e}"));
    (status, body)
}

/// `POST /jobs` with `body`; asserts `202` and returns the job id.
async fn submit(client: &Client, server: &Server, body: Value) -> String {
    let (status, answer) = send(client.post(server.url("/jobs")).json(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body} -> {answer}");
    let id = answer["job_id"].as_str().expect("job_id is a string").to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "job ids are UUIDs, got {id:?}"
    );
    id
}

async fn job(client: &Client, server: &Server, id: &str) -> Value {
    let (status, body) = send(client.get(server.url(&format!("/jobs/{id}")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["job_id"], id);
    body
}

/// Polls `GET /jobs/{id}` until `done` holds for the job.
async fn wait_for(
    client: &Client,
    server: &Server,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = job(client, server, id).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "job {id} never became {what}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_terminal(job: &Value) -> bool {
    matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled"))
}

/// Asserts a `4xx` answer with a JSON `{"error": "..."}` body.
fn assert_client_error(what: &str, (status, body): (StatusCode, Value), expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error message in {body}"));
    assert!(!error.is_empty(), "{what}: empty error message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_then_sigterm_with_jobs_in_flight() {
    let shutdown_ms = SHUTDOWN_TIMEOUT_MS.to_string();
    let mut server = Server::start(&[
        ("SHUTDOWN_TIMEOUT_MS", &shutdown_ms),
        ("CANCEL_TIMEOUT_MS", "300"),
        ("MAX_CONCURRENT", "4"),
    ]);
    let client = Client::new();

    // Health of an idle server.
    let (status, health) = send(client.get(server.url("/health"))).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["accepting"], true);
    assert_eq!(health["total"], 0);
    assert_eq!(health["max_concurrent"], 4);

    // A sleep job completes, with its progress at 100% and its timings filled in.
    let sleeper = submit(&client, &server, json!({"kind": "sleep", "ms": 200})).await;
    let done = wait_for(&client, &server, &sleeper, "terminal", is_terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["fraction"], 1.0, "{done}");
    assert_eq!(done["progress"]["done"], 200, "{done}");
    assert_eq!(done["progress"]["total"], 200, "{done}");
    assert!(done["progress"]["message"].is_string(), "{done}");
    for field in [
        "submitted_at_ms",
        "started_at_ms",
        "finished_at_ms",
        "queued_ms",
        "run_time_ms",
    ] {
        assert!(done[field].is_u64(), "{field} missing in {done}");
    }
    assert!(
        done.get("message").is_none(),
        "a completed job has no failure message: {done}"
    );

    // A failing job shows its message.
    let failing = submit(&client, &server, json!({"kind": "fail", "message": "disk full"})).await;
    let failed = wait_for(&client, &server, &failing, "terminal", is_terminal).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["message"], "disk full", "{failed}");

    // A panicking job is Failed, and the server goes on serving.
    let panicking = submit(&client, &server, json!({"kind": "panic"})).await;
    let panicked = wait_for(&client, &server, &panicking, "terminal", is_terminal).await;
    assert_eq!(panicked["status"], "failed", "{panicked}");
    let message = panicked["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("panicked"), "{panicked}");
    let (status, _) = send(client.get(server.url("/health"))).await;
    assert_eq!(status, StatusCode::OK);

    // A running sleep job reports progress, and DELETE cancels it; cancelling again is fine.
    let long = submit(&client, &server, json!({"kind": "sleep", "ms": 60_000})).await;
    let running = wait_for(&client, &server, &long, "running with progress", |job| {
        job["status"] == "running" && job["progress"].is_object()
    })
    .await;
    assert_eq!(running["progress"]["total"], 60_000, "{running}");
    let (status, cancelled) = send(client.delete(server.url(&format!("/jobs/{long}")))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["job_id"], long.as_str());
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["finished_at_ms"].is_u64(), "{cancelled}");
    let (status, again) = send(client.delete(server.url(&format!("/jobs/{long}")))).await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{again}"
    );
    assert_eq!(job(&client, &server, &long).await["status"], "cancelled");

    // A job that ignores its token is aborted after the cancel timeout.
    let stubborn = submit(&client, &server, json!({"kind": "ignore_cancel", "ms": 60_000})).await;
    wait_for(&client, &server, &stubborn, "running", |job| {
        job["status"] == "running"
    })
    .await;
    let (status, aborted) = send(client.delete(server.url(&format!("/jobs/{stubborn}")))).await;
    assert_eq!(
        (status, &aborted["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{aborted}"
    );

    // Cancelling a finished job answers its status unchanged.
    let (status, still) = send(client.delete(server.url(&format!("/jobs/{failing}")))).await;
    assert_eq!(
        (status, &still["status"]),
        (StatusCode::OK, &json!("failed")),
        "{still}"
    );
    assert_eq!(still["message"], "disk full");

    // GET /jobs lists every job with its status, newest first.
    let (status, list) = send(client.get(server.url("/jobs"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 5, "{list}");
    let listed: Vec<(&str, &str)> = list["jobs"]
        .as_array()
        .expect("jobs is an array")
        .iter()
        .map(|job| {
            (
                job["job_id"].as_str().unwrap_or_default(),
                job["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (stubborn.as_str(), "cancelled"),
            (long.as_str(), "cancelled"),
            (panicking.as_str(), "failed"),
            (failing.as_str(), "failed"),
            (sleeper.as_str(), "completed"),
        ]
    );
    assert_eq!(list["jobs"][3]["message"], "disk full");
    assert_eq!(list["next_cursor"], Value::Null, "{list}");
    let (_, health) = send(client.get(server.url("/health"))).await;
    assert_eq!(
        (
            &health["completed"],
            &health["failed"],
            &health["cancelled"],
            &health["total"]
        ),
        (&json!(1), &json!(2), &json!(2), &json!(5)),
        "{health}"
    );

    bad_input(&client, &server).await;

    // Jobs in flight at SIGTERM: two that ignore their token, three cooperative sleeps. With
    // MAX_CONCURRENT=4 one of them is still pending, waiting for a permit. (Which one is up to the
    // runtime: a task takes its permit when it is first polled.)
    let mut in_flight = Vec::new();
    for body in [
        json!({"kind": "ignore_cancel", "ms": 60_000}),
        json!({"kind": "ignore_cancel", "ms": 60_000}),
        json!({"kind": "sleep", "ms": 60_000}),
        json!({"kind": "sleep", "ms": 60_000}),
        json!({"kind": "sleep", "ms": 60_000}),
    ] {
        let stubborn = body["kind"] == "ignore_cancel";
        in_flight.push((submit(&client, &server, body).await, stubborn));
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, health) = send(client.get(server.url("/health"))).await;
        if (
            &health["running"],
            &health["pending"],
            &health["waiting_for_permit"],
        ) == (&json!(4), &json!(1), &json!(1))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never 4 running and 1 waiting: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A running job that ignores its token will be aborted; every other one stops when told
    // (the pending one never starts).
    let mut expected = Vec::new();
    for (id, stubborn) in &in_flight {
        let status = job(&client, &server, id).await["status"].clone();
        let outcome = match (status.as_str(), stubborn) {
            (Some("running"), true) => TaskOutcome::Aborted,
            (Some("running" | "pending"), _) => TaskOutcome::Cancelled,
            _ => panic!("job {id} is {status} before the shutdown"),
        };
        expected.push((id.clone(), outcome));
    }
    drop(client); // close keep-alive connections; the server does not wait for idle ones anyway

    let signalled = Instant::now();
    server.terminate();
    let status = server.wait_exit(EXIT_BOUND).unwrap_or_else(|| {
        panic!("the server did not exit within {EXIT_BOUND:?} of SIGTERM");
    });
    let took = signalled.elapsed();
    assert!(status.success(), "the server exited with {status}");

    // Every job in flight is in the report, with how it ended; none that had finished before.
    let report = server.shutdown_report();
    assert_eq!(report.total(), in_flight.len(), "{report:?}");
    for (id, outcome) in &expected {
        assert_eq!(report.outcome(id), Some(outcome), "{id} in {report:?}");
    }
    assert!(report.aborted() >= 1, "{report:?}");
    for id in [&sleeper, &failing, &panicking, &long, &stubborn] {
        assert_eq!(report.outcome(id), None, "{id} had finished before the shutdown");
    }
    // A stubborn job held the drain for the whole shutdown timeout.
    assert!(
        report.elapsed() >= Duration::from_millis(SHUTDOWN_TIMEOUT_MS),
        "{report:?}"
    );
    eprintln!("SIGTERM to exit: {took:?} (drain {:?})", report.elapsed());
}

/// Every bad request gets a 4xx with a JSON error; the server stays up.
async fn bad_input(client: &Client, server: &Server) {
    let jobs = server.url("/jobs");
    let raw = |body: &str| {
        client
            .post(&jobs)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
    };
    assert_client_error(
        "malformed JSON",
        send(raw("{\"kind\": ")).await,
        StatusCode::BAD_REQUEST,
    );
    assert_client_error(
        "not an object",
        send(raw("[1, 2]")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_client_error(
        "unknown kind",
        send(raw(r#"{"kind": "mine_bitcoin"}"#)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_client_error(
        "no kind",
        send(raw(r#"{"ms": 5}"#)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_client_error(
        "missing field",
        send(raw(r#"{"kind": "sleep"}"#)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_client_error(
        "negative duration",
        send(raw(r#"{"kind": "sleep", "ms": -1}"#)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    for kind in ["sleep", "ignore_cancel"] {
        let absurd = json!({"kind": kind, "ms": jobs::MAX_JOB_MS + 1});
        assert_client_error(
            "absurd duration",
            send(client.post(&jobs).json(&absurd)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let huge = json!({"kind": "fail", "message": "x".repeat(jobs::MAX_BODY_BYTES)});
    assert_client_error(
        "oversized body",
        send(client.post(&jobs).json(&huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_client_error(
        "no content type",
        send(client.post(&jobs).body(r#"{"kind": "panic"}"#)).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );
    let unknown = uuid::Uuid::new_v4();
    assert_client_error(
        "unknown job",
        send(client.get(server.url(&format!("/jobs/{unknown}")))).await,
        StatusCode::NOT_FOUND,
    );
    assert_client_error(
        "cancel unknown job",
        send(client.delete(server.url(&format!("/jobs/{unknown}")))).await,
        StatusCode::NOT_FOUND,
    );
    assert_client_error(
        "invalid id",
        send(client.get(server.url("/jobs/%FF"))).await,
        StatusCode::BAD_REQUEST,
    );
    assert_client_error(
        "unknown route",
        send(client.get(server.url("/nope"))).await,
        StatusCode::NOT_FOUND,
    );
    assert_client_error(
        "wrong method",
        send(client.put(server.url("/jobs"))).await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
    // None of that submitted anything, and the server still answers.
    let (status, health) = send(client.get(server.url("/health"))).await;
    assert_eq!(
        (status, &health["total"]),
        (StatusCode::OK, &json!(5)),
        "{health}"
    );
}

/// Once the worker's drain has begun, submissions and health checks answer 503 while the
/// running jobs are still being waited for; job lookups go on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_while_draining_get_503() {
    let worker = Worker::builder().shutdown_timeout(Duration::from_secs(1)).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("bound address"));
    let server = tokio::spawn(
        axum::serve(
            listener,
            Console::new(worker.clone())
                .router()
                .merge(jobs::Jobs::new(worker.clone(), Console::new(worker.clone())).router()),
        )
        .into_future(),
    );
    let client = Client::new();

    let (status, accepted) = send(
        client
            .post(format!("{base}/jobs"))
            .json(&json!({"kind": "ignore_cancel", "ms": 60_000})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job_id").to_owned();
    // Running before the drain begins: a job still pending then would never start, and be
    // reported cancelled, not aborted.
    let deadline = Instant::now() + WAIT;
    while worker.get_task_status(&id).await != Some(TaskStatus::Running) {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::task::yield_now().await;
    }

    let drain = tokio::spawn({
        let worker = worker.clone();
        async move { worker.shutdown().await }
    });
    let deadline = Instant::now() + WAIT;
    while !worker.is_shutting_down() {
        assert!(Instant::now() < deadline, "shutdown never began");
        tokio::task::yield_now().await;
    }

    let (status, refused) = send(
        client
            .post(format!("{base}/jobs"))
            .json(&json!({"kind": "sleep", "ms": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("shutting down"),
        "{refused}"
    );
    let (status, health) = send(client.get(format!("{base}/health"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["accepting"], false, "{health}");
    let (status, job) = send(client.get(format!("{base}/jobs/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{job}");

    let report = drain.await.expect("the drain task");
    assert_eq!(report.outcome(&id), Some(&TaskOutcome::Aborted), "{report:?}");
    assert_eq!(
        report.total(),
        1,
        "the refused submission was never registered: {report:?}"
    );
    let (_, job) = send(client.get(format!("{base}/jobs/{id}"))).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    server.abort();
}

/// Bad settings exit with code 2 and say why; `--help` exits 0.
#[test]
fn bad_settings_are_refused() {
    for (args, envs, expected) in [
        (&["--addr"][..], &[][..], "--addr needs a value"),
        (&["--bogus"][..], &[][..], "unknown argument"),
        (&[][..], &[("PORT", "http")][..], "PORT must be a port number"),
        (
            &["--shutdown-timeout-ms", "soon"][..],
            &[][..],
            "must be a whole number",
        ),
        (
            &[][..],
            &[("SHUTDOWN_TIMEOUT_MS", "99999999999")][..],
            "must be at most",
        ),
        (&["--max-concurrent=0"][..], &[][..], "at least 1"),
    ] {
        let output = run_to_end(args, envs);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {envs:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?} {envs:?}: {stderr}");
    }
    let help = run_to_end(&["--help"], &[]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--addr HOST:PORT"));
}

/// `GET /metrics` (feature `metrics`) after a known set of jobs: two completed, one failed, one
/// panicked, one cancelled, then one left running.
#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_jobs_in_the_prometheus_text_format() {
    let server = Server::start(&[("CANCEL_TIMEOUT_MS", "300")]);
    let client = Client::new();

    // Before any job: every counter and gauge is there, at 0.
    let scrape = metrics_scrape(&client, &server).await;
    assert_eq!(scrape.value("background_worker_tasks_submitted_total", &[]), 0.0);
    for status in ["completed", "failed", "cancelled"] {
        assert_eq!(
            scrape.value("background_worker_tasks_finished_total", &[("status", status)]),
            0.0
        );
    }
    for state in ["pending", "running"] {
        assert_eq!(scrape.value("background_worker_tasks", &[("state", state)]), 0.0);
    }

    let mut ids = Vec::new();
    for body in [
        json!({"kind": "sleep", "ms": 50}),
        json!({"kind": "sleep", "ms": 100}),
        json!({"kind": "fail", "message": "disk full"}),
        json!({"kind": "panic"}),
    ] {
        ids.push(submit(&client, &server, body).await);
    }
    let long = submit(&client, &server, json!({"kind": "sleep", "ms": 60_000})).await;
    wait_for(&client, &server, &long, "running", |job| {
        job["status"] == "running"
    })
    .await;
    let (status, cancelled) = send(client.delete(server.url(&format!("/jobs/{long}")))).await;
    assert_eq!(
        (status, &cancelled["status"]),
        (StatusCode::OK, &json!("cancelled"))
    );
    for id in &ids {
        wait_for(&client, &server, id, "terminal", is_terminal).await;
    }
    ids.push(long);
    let running = submit(&client, &server, json!({"kind": "sleep", "ms": 60_000})).await;
    wait_for(&client, &server, &running, "running", |job| {
        job["status"] == "running"
    })
    .await;
    ids.push(running);

    let scrape = metrics_scrape(&client, &server).await;
    assert_eq!(scrape.value("background_worker_tasks_submitted_total", &[]), 6.0);
    let finished = |status| scrape.value("background_worker_tasks_finished_total", &[("status", status)]);
    assert_eq!(
        (finished("completed"), finished("failed"), finished("cancelled")),
        (2.0, 2.0, 1.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value("background_worker_tasks", &[("state", "running")]),
        1.0
    );
    assert_eq!(
        scrape.value("background_worker_tasks", &[("state", "pending")]),
        0.0
    );
    // One queue wait per started job; one duration per finished job, by status.
    assert_eq!(
        scrape.value("background_worker_task_queue_wait_seconds_count", &[]),
        6.0
    );
    let durations = |status| {
        scrape.value(
            "background_worker_task_duration_seconds_count",
            &[("status", status)],
        )
    };
    assert_eq!(
        (
            durations("completed"),
            durations("failed"),
            durations("cancelled")
        ),
        (2.0, 2.0, 1.0)
    );
    // The completed ones slept 50 and 100 ms: the buckets say so.
    let completed_by = |le| {
        scrape.value(
            "background_worker_task_duration_seconds_bucket",
            &[("status", "completed"), ("le", le)],
        )
    };
    assert_eq!((completed_by("0.025"), completed_by("10")), (0.0, 2.0));
    // No shutdown yet.
    for outcome in ["completed", "failed", "cancelled", "aborted"] {
        assert_eq!(
            scrape.value("background_worker_shutdown_tasks_total", &[("outcome", outcome)]),
            0.0
        );
    }
    assert_eq!(
        scrape.value("background_worker_shutdown_duration_seconds_count", &[]),
        0.0
    );
    assert!(scrape
        .text
        .contains("# TYPE background_worker_task_duration_seconds histogram"));
    assert!(scrape.text.contains("# TYPE background_worker_tasks gauge"));
    for id in &ids {
        assert!(!scrape.text.contains(id.as_str()), "a job id in the scrape: {id}");
    }
}

/// A scrape of `GET /metrics`.
#[cfg(feature = "metrics")]
struct Scrape {
    text: String,
}

#[cfg(feature = "metrics")]
impl Scrape {
    /// The value of the sample `name{worker="jobs", labels...}` (the labels in any order, and
    /// exactly these), failing the test when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut wanted: Vec<String> = labels
            .iter()
            .chain(&[("worker", "jobs")])
            .map(|(key, value)| format!("{key}=\"{value}\""))
            .collect();
        wanted.sort();
        for line in self.text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (sample, mut got) = match series.split_once('{') {
                Some((sample, rest)) => (
                    sample,
                    rest.trim_end_matches('}')
                        .split(',')
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            got.sort();
            if sample == name && got == wanted {
                return value.parse().unwrap_or_else(|_| panic!("{line}"));
            }
        }
        panic!("no sample {name} {wanted:?} in:\n{}", self.text);
    }
}

#[cfg(feature = "metrics")]
async fn metrics_scrape(client: &Client, server: &Server) -> Scrape {
    let response = client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("the request reaches the server");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape {
        text: response.text().await.expect("read the scrape"),
    }
}
