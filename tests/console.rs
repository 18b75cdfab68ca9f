//! The console's router (feature `axum`) through `tower::ServiceExt::oneshot`: paging and
//! filters, lookups, cancel, health at capacity, Server-Sent Events, the dashboard's headers and
//! the JSON error bodies.

#![cfg(feature = "axum")]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use background_worker::console::{Console, JobIndex, Serving};
use background_worker::Worker;
use serde_json::Value;
use tower::ServiceExt;

/// The bound on any one wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let response = tokio::time::timeout(WAIT, app.clone().oneshot(request))
        .await
        .expect("the router answered in time")
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    (status, headers, String::from_utf8(body.to_vec()).expect("UTF-8"))
}

async fn json(app: &Router, method: &str, uri: &str) -> (StatusCode, Value) {
    let (status, headers, body) = call(app, method, uri).await;
    assert_eq!(
        headers
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("application/json"),
        "{method} {uri}: {status} {body}"
    );
    (status, serde_json::from_str(&body).expect("JSON"))
}

fn indexed(max_tracked: usize) -> (Worker, Router) {
    let index = JobIndex::new(max_tracked);
    let worker = Worker::builder()
        .max_tracked(max_tracked)
        .observer(index.clone())
        .build();
    let app = Console::new(worker.clone()).index(index).router();
    (worker, app)
}

async fn run_jobs(worker: &Worker, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("job-{i:06}");
        worker
            .submit(id.clone(), || async { Ok(()) })
            .await
            .expect("submit");
        ids.push(id);
    }
    for id in &ids {
        tokio::time::timeout(WAIT, worker.wait(id))
            .await
            .expect("job ended");
    }
    ids
}

/// Walks every page with `query` and returns the ids in order, checking each page's size.
async fn walk(app: &Router, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let uri = match &cursor {
            None => format!("/jobs?limit={limit}{query}"),
            Some(cursor) => format!("/jobs?limit={limit}{query}&cursor={cursor}"),
        };
        let (status, page) = json(app, "GET", &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let jobs = page["jobs"].as_array().expect("jobs");
        assert!(jobs.len() <= limit, "{page}");
        assert_eq!(page["count"], jobs.len());
        ids.extend(
            jobs.iter()
                .map(|job| job["job_id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("paging never ended");
}

#[tokio::test]
async fn pages_come_newest_first_and_cover_every_job_once() {
    let (worker, app) = indexed(10_000);
    let mut ids = run_jobs(&worker, 1_000).await;
    ids.reverse();

    assert_eq!(walk(&app, "", 100).await, ids);
    assert_eq!(walk(&app, "", 7).await, ids, "pages of an odd size");
    let (_, first) = json(&app, "GET", "/jobs").await;
    assert_eq!(first["count"], 100, "the default limit");
    let (_, most) = json(&app, "GET", "/jobs?limit=1000").await;
    assert_eq!(
        (&most["count"], &most["next_cursor"]),
        (&Value::from(1000), &Value::Null)
    );
}

#[tokio::test]
async fn a_console_without_an_index_pages_alike() {
    let worker = Worker::new();
    let app = Console::new(worker.clone()).router();
    let mut ids = run_jobs(&worker, 250).await;
    ids.reverse();
    assert_eq!(walk(&app, "", 100).await, ids);
}

#[tokio::test]
async fn filters_by_status_and_refuses_bad_queries() {
    let (worker, app) = indexed(100);
    run_jobs(&worker, 30).await;
    for i in 0..5 {
        worker
            .submit_with_context(format!("live-{i}"), |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await
            .expect("submit");
    }
    worker
        .submit("broken", || async { Err(anyhow::anyhow!("disk full")) })
        .await
        .expect("submit");
    tokio::time::timeout(WAIT, worker.wait("broken"))
        .await
        .expect("ended");
    tokio::time::sleep(Duration::from_millis(50)).await;

    let running = walk(&app, "&status=running", 2).await;
    assert_eq!(running, ["live-4", "live-3", "live-2", "live-1", "live-0"]);
    let (_, failed) = json(&app, "GET", "/jobs?status=failed").await;
    assert_eq!(failed["jobs"][0]["message"], "disk full", "{failed}");
    assert_eq!(walk(&app, "&status=completed", 1000).await.len(), 30);
    // Without a mirror, jobs have no replica.
    let (_, none) = json(&app, "GET", "/jobs?replica=a").await;
    assert_eq!(none["count"], 0);
    // Unknown parameters are ignored.
    let (status, _) = json(&app, "GET", "/jobs?schedule=nightly").await;
    assert_eq!(status, StatusCode::OK);

    for bad in [
        "/jobs?limit=0",
        "/jobs?limit=1001",
        "/jobs?limit=ten",
        "/jobs?status=done",
        "/jobs?cursor=nonsense",
        "/jobs?cursor=-1",
    ] {
        let (status, body) = json(&app, "GET", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

/// Entries the worker removed (here by a cleanup) are skipped, not listed.
#[tokio::test]
async fn removed_jobs_leave_the_pages() {
    let (worker, app) = indexed(100);
    run_jobs(&worker, 10).await;
    worker.cleanup_finished_tasks().await;
    worker.submit("after", || async { Ok(()) }).await.expect("submit");
    assert_eq!(walk(&app, "", 3).await, ["after"]);
}

#[tokio::test]
async fn a_page_of_100k_jobs_is_one_page_of_the_newest() {
    let (worker, app) = indexed(100_000);
    let ids = run_jobs(&worker, 100_000).await;
    let (status, page) = json(&app, "GET", "/jobs?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|job| job["job_id"].as_str().unwrap_or_default())
        .collect();
    let newest: Vec<&str> = ids.iter().rev().take(1000).map(String::as_str).collect();
    assert_eq!(listed, newest);
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn lookups_cancels_and_errors_are_json() {
    let (worker, app) = indexed(100);
    worker
        .submit_with_context("long", |ctx| async move {
            ctx.set_progress(0.25);
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .expect("submit");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let (status, job) = json(&app, "GET", "/jobs/long").await;
    assert_eq!(
        (status, &job["status"]),
        (StatusCode::OK, &Value::from("running"))
    );
    assert_eq!(job["progress"]["fraction"], 0.25);
    let (status, job) = json(&app, "DELETE", "/jobs/long").await;
    assert_eq!(
        (status, &job["status"]),
        (StatusCode::OK, &Value::from("cancelled")),
        "{job}"
    );
    let (status, job) = json(&app, "DELETE", "/jobs/long").await;
    assert_eq!(
        (status, &job["status"]),
        (StatusCode::OK, &Value::from("cancelled")),
        "cancel twice"
    );

    let (status, body) = json(&app, "GET", "/jobs/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = json(&app, "DELETE", "/jobs/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let long = "x".repeat(60_000);
    let (status, body) = json(&app, "GET", &format!("/jobs/{long}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().len() < 200, "the id is not echoed whole: {body}");
    let (status, _) = json(&app, "GET", "/jobs/%FF").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json(&app, "GET", "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json(&app, "PUT", "/jobs").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_read_only_console_cannot_cancel() {
    let worker = Worker::new();
    let app = Console::new(worker.clone()).read_only(true).router();
    worker
        .submit_with_context("long", |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .expect("submit");
    let (status, _) = json(&app, "DELETE", "/jobs/long").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!worker
        .get_task_status("long")
        .await
        .expect("tracked")
        .is_terminal());
    let (_, _, page) = call(&app, "GET", "/dashboard").await;
    assert!(page.contains(r#"data-mode="read-only""#));
}

#[tokio::test]
async fn health_says_why_it_does_not_accept() {
    let (worker, app) = indexed(2);
    let (status, health) = json(&app, "GET", "/health").await;
    assert_eq!(
        (status, &health["accepting"], &health["not_accepting"]),
        (StatusCode::OK, &Value::from(true), &Value::Null)
    );
    for id in ["a", "b"] {
        worker
            .submit_with_context(id, |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await
            .expect("submit");
    }
    let (status, health) = json(&app, "GET", "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["not_accepting"], "at_capacity", "{health}");
    worker.shutdown().await;
    let (_, health) = json(&app, "GET", "/health").await;
    assert_eq!(health["not_accepting"], "shutting_down", "{health}");
}

#[tokio::test]
async fn the_console_mounts_under_a_prefix() {
    let worker = Worker::new();
    let app = Router::new().nest("/admin/jobs", Console::new(worker.clone()).router());
    worker.submit("a", || async { Ok(()) }).await.expect("submit");
    let (status, job) = json(&app, "GET", "/admin/jobs/jobs/a").await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let (status, _, _) = call(&app, "GET", "/admin/jobs/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&app, "GET", "/admin/jobs/dashboard.js").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_dashboard_runs_under_a_strict_policy() {
    let app = Console::new(Worker::new()).router();
    let (status, headers, page) = call(&app, "GET", "/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let policy = headers["content-security-policy"].to_str().expect("ASCII");
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert!(page.contains(r#"data-mode="read-write""#));
    // Nothing inline: no script body, no style element or attribute, no event handler.
    assert!(
        !page.contains("<style") && !page.contains("style=") && !page.contains(" on"),
        "{page}"
    );
    assert!(page.contains(r#"<script src="dashboard.js" defer></script>"#));
    let (_, headers, script) = call(&app, "GET", "/dashboard.js").await;
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert!(
        !script.contains("innerHTML")
            && !script.contains("insertAdjacentHTML")
            && !script.contains("document.write")
    );
    let (_, headers, _) = call(&app, "GET", "/dashboard.css").await;
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn events_stream_each_status_change_as_its_job() {
    let worker = Worker::new();
    let app = Console::new(worker.clone()).router();
    let request = Request::get("/events").body(Body::empty()).expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body().into_data_stream();

    worker
        .submit("boom", || async { Err(anyhow::anyhow!("disk <full>")) })
        .await
        .expect("submit");
    let mut text = String::new();
    use futures_util::StreamExt;
    while !text.contains("event: failed") {
        let chunk = tokio::time::timeout(WAIT, body.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("a chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(events, ["pending", "running", "failed"], "{text}");
    let failed = text
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("data");
    let failed: Value = serde_json::from_str(failed).expect("JSON");
    assert_eq!(
        (&failed["job_id"], &failed["message"]),
        (&Value::from("boom"), &Value::from("disk <full>"))
    );
}

/// A body declared over the limit is refused from its `Content-Length`, before it is read;
/// every error of the serving layers is JSON.
#[tokio::test]
async fn serving_layers_answer_json() {
    let app = Serving::default()
        .max_uri_bytes(64)
        .layer(Console::new(Worker::new()).router());
    let request = Request::post("/jobs")
        .header("content-length", "100000")
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-type"], "application/json");
    let (status, body) = json(&app, "GET", &format!("/jobs/{}", "x".repeat(100))).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{body}");
}

/// An application's `POST /jobs` with `ApiError::from_submit`: `429` with `Retry-After`, naming
/// no id, when every tracked job is live; `409` for a live id.
#[tokio::test]
async fn refusals_carry_retry_after_and_no_unsent_id() {
    use axum::extract::{Path, State};
    use axum::routing::post;
    use background_worker::console::ApiError;

    async fn submit(State(worker): State<Worker>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
        worker
            .submit_with_context(id, |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await
            .map_err(|refused| ApiError::from_submit(&refused))?;
        Ok(StatusCode::ACCEPTED)
    }

    let (worker, console) = indexed(1);
    let app = console.merge(
        Router::new()
            .route("/submit/{id}", post(submit))
            .with_state(worker),
    );
    let (status, _, _) = call(&app, "POST", "/submit/first").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, headers, body) = call(&app, "POST", "/submit/second-id").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(!body.contains("second-id") && !body.contains("first"), "{body}");
    let (status, _, body) = call(&app, "POST", "/submit/first").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// An application's `POST /jobs/{id}` with the client's id, answering refusals with
/// `Console::submit_refused`.
fn with_client_ids(worker: &Worker) -> Router {
    use axum::extract::{Path, State};
    use axum::routing::post;
    use background_worker::console::{check_id, ApiError};

    async fn submit(
        State((worker, console)): State<(Worker, Console)>,
        Path(id): Path<String>,
    ) -> Result<StatusCode, ApiError> {
        check_id(&id)?;
        let submitted = worker
            .submit_with_context(id, |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await;
        match submitted {
            Ok(()) => Ok(StatusCode::ACCEPTED),
            Err(refused) => Err(console.submit_refused(&refused).await),
        }
    }
    let console = Console::new(worker.clone());
    console.clone().router().merge(
        Router::new()
            .route("/submit/{id}", post(submit))
            .with_state((worker.clone(), console)),
    )
}

#[tokio::test]
async fn a_duplicate_client_id_gets_409_with_the_job_as_get_shows_it() {
    let worker = Worker::new();
    let app = with_client_ids(&worker);
    let (status, _) = json_or_empty(&app, "POST", "/submit/user-sync-42").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, conflict) = json(&app, "POST", "/submit/user-sync-42").await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    let (status, shown) = json(&app, "GET", "/jobs/user-sync-42").await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let job = &conflict["job"];
    for field in ["job_id", "status", "replica", "submitted_at_ms", "started_at_ms"] {
        assert_eq!(job[field], shown[field], "{field}: {conflict} vs {shown}");
    }
    assert!(
        job.get("fencing_token").is_none(),
        "an unclaimed job has no token: {conflict}"
    );
    assert!(
        conflict["error"]
            .as_str()
            .is_some_and(|e| e.contains("user-sync-42")),
        "{conflict}"
    );

    // Finished: the id is free again, and a refusal of another kind carries no job.
    worker.cancel("user-sync-42").await.expect("cancel");
    let (status, _) = json_or_empty(&app, "POST", "/submit/user-sync-42").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    worker.shutdown().await;
    let (status, refused) = json(&app, "POST", "/submit/another").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert!(refused.get("job").is_none(), "{refused}");
}

async fn json_or_empty(app: &Router, method: &str, uri: &str) -> (StatusCode, String) {
    let (status, _, body) = call(app, method, uri).await;
    (status, body)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn claim_refusals_map_to_409_and_503_with_retry_after() {
    use axum::response::IntoResponse;
    use background_worker::console::ApiError;
    use background_worker::{ClaimError, SubmitError};

    let id = || "daily-report".to_owned();
    let cases = [
        (
            ClaimError::Held {
                id: id(),
                replica: "a".into(),
                fencing_token: Some(7),
            },
            StatusCode::CONFLICT,
            None,
        ),
        (
            ClaimError::Unavailable {
                id: id(),
                reason: "connection refused".into(),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            Some("1"),
        ),
        (
            ClaimError::NotKnownYet {
                id: id(),
                retry_after: Duration::from_millis(1_500),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            Some("2"),
        ),
        (
            ClaimError::Refused {
                id: id(),
                reason: "run dead".into(),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            Some("1"),
        ),
        (
            ClaimError::Submit(SubmitError::DuplicateId { id: id() }),
            StatusCode::CONFLICT,
            None,
        ),
        (ClaimError::NotStarted, StatusCode::INTERNAL_SERVER_ERROR, None),
    ];
    for (error, status, retry_after) in cases {
        let response = ApiError::from_claim(&error).into_response();
        assert_eq!(response.status(), status, "{error}");
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default()),
            retry_after,
            "{error}"
        );
    }
    let held = ApiError::from_claim(&ClaimError::Held {
        id: "x".repeat(10_000),
        replica: "a".into(),
        fencing_token: None,
    });
    assert!(
        held.message().len() < 400 && held.message().contains("\"a\""),
        "{}",
        held.message()
    );
}
