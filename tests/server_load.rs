//! The `03_job_server` example under concurrent load: many client tasks submit hundreds of jobs
//! and poll their statuses over loopback at the same time. No request may fail and every job must
//! reach the terminal status its kind implies; then SIGTERM finds nothing left to drain.
//!
//! Bounded in count (`CLIENTS * JOBS_PER_CLIENT` jobs) and in time (`TIME_LIMIT`), so it stays a
//! correctness test rather than a benchmark; it asserts nothing about speed.

#![cfg(feature = "axum")]

mod server_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use server_support::Server;

const CLIENTS: usize = 16;
const JOBS_PER_CLIENT: usize = 25;
/// For all clients together, submissions and polling included.
const TIME_LIMIT: Duration = Duration::from_secs(40);

/// What a job is asked to do, and how it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// A short sleep that completes.
    Sleep(u64),
    /// Fails with its own message.
    Fail,
    /// Panics.
    Panic,
    /// A long sleep that the client cancels.
    Cancel,
}

impl Plan {
    fn for_job(n: usize) -> Self {
        match n % 20 {
            0 | 10 => Self::Fail,
            5 => Self::Panic,
            15 => Self::Cancel,
            _ => Self::Sleep((n as u64 * 37) % 250),
        }
    }

    fn body(self, n: usize) -> Value {
        match self {
            Self::Sleep(ms) => json!({"kind": "sleep", "ms": ms}),
            Self::Fail => json!({"kind": "fail", "message": format!("job {n} failed")}),
            Self::Panic => json!({"kind": "panic"}),
            Self::Cancel => json!({"kind": "sleep", "ms": 600_000}),
        }
    }

    /// `(status, message)` the job must end with.
    fn expected(self, n: usize) -> (&'static str, Option<String>) {
        match self {
            Self::Sleep(_) => ("completed", None),
            Self::Fail => ("failed", Some(format!("job {n} failed"))),
            Self::Panic => ("failed", Some("panicked: the job asked to panic".to_owned())),
            Self::Cancel => ("cancelled", None),
        }
    }
}

/// Counts requests and records every failed one (transport error or unexpected status).
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    /// Sends the request; `Some(body)` if it answered `expected` with a JSON body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
        what: &str,
    ) -> Option<Value> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let failure = match request.send().await {
            Err(error) => format!("{what}: {error}"),
            Ok(response) if response.status() != expected => {
                let status = response.status();
                format!("{what}: {status} {}", response.text().await.unwrap_or_default())
            }
            Ok(response) => match response.json::<Value>().await {
                Ok(body) => return Some(body),
                Err(error) => format!("{what}: bad body: {error}"),
            },
        };
        self.fail(failure);
        None
    }

    fn fail(&self, failure: String) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(failure);
    }
}

/// One client: submits its jobs, cancels the ones planned for it, polls the rest until terminal.
/// Returns `(job number, job id, final job JSON)` for every job it submitted.
async fn client_run(
    client: Client,
    base: String,
    first: usize,
    tally: Arc<Tally>,
) -> Vec<(usize, String, Value)> {
    let mut jobs = Vec::new();
    for n in first..first + JOBS_PER_CLIENT {
        let plan = Plan::for_job(n);
        let request = client.post(format!("{base}/jobs")).json(&plan.body(n));
        if let Some(answer) = tally
            .send(request, StatusCode::ACCEPTED, &format!("submit {n}"))
            .await
        {
            match answer["job_id"].as_str() {
                Some(id) => jobs.push((n, id.to_owned(), Value::Null)),
                None => tally.fail(format!("submit {n}: no job_id in {answer}")),
            }
        }
    }
    for (n, id, last) in &mut jobs {
        if Plan::for_job(*n) == Plan::Cancel {
            let request = client.delete(format!("{base}/jobs/{id}"));
            if let Some(job) = tally.send(request, StatusCode::OK, &format!("cancel {n}")).await {
                *last = job;
            }
        }
    }
    // Poll every job that is not terminal yet, round after round.
    loop {
        let mut open = 0;
        for (n, id, last) in &mut jobs {
            if is_terminal(last) {
                continue;
            }
            let request = client.get(format!("{base}/jobs/{id}"));
            match tally.send(request, StatusCode::OK, &format!("poll {n}")).await {
                Some(job) => *last = job,
                None => return jobs, // already recorded; stop this client
            }
            if !is_terminal(last) {
                open += 1;
            }
        }
        if open == 0 {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_terminal(job: &Value) -> bool {
    matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_jobs_from_many_clients() {
    let mut server = Server::start(&[
        ("MAX_CONCURRENT", "64"),
        ("CANCEL_TIMEOUT_MS", "1000"),
        ("SHUTDOWN_TIMEOUT_MS", "1000"),
        ("RUST_LOG", "warn"),
    ]);
    let client = Client::new();
    let tally = Arc::new(Tally::default());

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(client_run(
                client.clone(),
                server.base.clone(),
                c * JOBS_PER_CLIENT,
                Arc::clone(&tally),
            ))
        })
        .collect();
    let all = tokio::time::timeout(TIME_LIMIT, async {
        let mut all = Vec::new();
        for client in clients {
            all.extend(client.await.expect("a client task panicked"));
        }
        all
    })
    .await
    .unwrap_or_else(|_| panic!("the clients did not finish within {TIME_LIMIT:?}"));
    let took = started.elapsed();

    let failures = tally
        .failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert!(
        failures.is_empty(),
        "{} failed requests, first ones: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert_eq!(
        all.len(),
        CLIENTS * JOBS_PER_CLIENT,
        "every submission was accepted"
    );

    let mut ids = std::collections::HashSet::new();
    for (n, id, job) in &all {
        assert!(ids.insert(id.clone()), "job id {id} handed out twice");
        let (status, message) = Plan::for_job(*n).expected(*n);
        assert_eq!(job["status"], status, "job {n}: {job}");
        assert_eq!(
            job["message"].as_str().map(str::to_owned),
            message,
            "job {n}: {job}"
        );
    }

    // The server's own view agrees: every job listed, all terminal, counts per status.
    let (mut completed, mut failed, mut cancelled) = (0, 0, 0);
    for n in 0..CLIENTS * JOBS_PER_CLIENT {
        match Plan::for_job(n).expected(n).0 {
            "completed" => completed += 1,
            "failed" => failed += 1,
            _ => cancelled += 1,
        }
    }
    let list: Value = client
        .get(server.url("/jobs?limit=1000"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(list["count"], CLIENTS * JOBS_PER_CLIENT);
    assert_eq!(list["next_cursor"], Value::Null, "one page holds every job");
    let listed = list["jobs"].as_array().expect("jobs array");
    assert!(listed.iter().all(is_terminal), "a listed job is not terminal");
    assert!(listed
        .iter()
        .all(|job| ids.contains(job["job_id"].as_str().unwrap_or_default())));
    let health: Value = client
        .get(server.url("/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        [
            &health["pending"],
            &health["running"],
            &health["completed"],
            &health["failed"],
            &health["cancelled"]
        ],
        [
            &json!(0),
            &json!(0),
            &json!(completed),
            &json!(failed),
            &json!(cancelled)
        ],
        "{health}"
    );
    drop(client);

    // Nothing is left in flight, so the drain is empty and the exit is clean.
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "the server exited with {status}");
    let report = server.shutdown_report();
    assert_eq!(report.total(), 0, "{report:?}");
    eprintln!(
        "{} jobs, {} requests from {CLIENTS} clients in {took:?}",
        all.len(),
        tally.requests.load(Ordering::Relaxed)
    );
}
