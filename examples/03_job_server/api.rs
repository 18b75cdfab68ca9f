//! The HTTP API: routes, request parsing, and the job kinds.
//!
//! Every handler copies what it needs out of the worker and answers; none holds anything across
//! an `.await` but the worker handle. Every error is a JSON body `{"error": "..."}` with a `4xx`
//! status (or `503` while shutting down); a `500` would mean a bug in this file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use background_worker::{CancelError, Progress, SubmitError, TaskContext, TaskInfo, TaskStatus, Worker};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Request bodies above this get `413 Payload Too Large`.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest demo job accepted; longer ones get `422`.
pub(crate) const MAX_JOB_MS: u64 = 10 * 60 * 1_000;
/// Longest failure message accepted (in bytes).
const MAX_MESSAGE_BYTES: usize = 1_024;

/// The whole API, with the worker as shared state.
pub(crate) fn router(worker: Worker) -> Router {
    Router::new()
        .route("/jobs", post(submit_job).get(list_jobs))
        .route("/jobs/{id}", get(show_job).delete(cancel_job))
        .route("/health", get(health))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(worker)
}

/// The body of `POST /jobs`: which demo work to run.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JobSpec {
    /// Sleeps `ms` milliseconds, reporting progress; stops early when cancelled.
    Sleep { ms: u64 },
    /// Fails at once with `message`.
    Fail { message: String },
    /// Panics at once.
    Panic,
    /// Sleeps `ms` milliseconds and ignores cancellation: cancel and shutdown have to abort it.
    IgnoreCancel { ms: u64 },
}

impl JobSpec {
    fn kind(&self) -> &'static str {
        match self {
            Self::Sleep { .. } => "sleep",
            Self::Fail { .. } => "fail",
            Self::Panic => "panic",
            Self::IgnoreCancel { .. } => "ignore_cancel",
        }
    }

    fn validate(&self) -> Result<(), ApiError> {
        match self {
            Self::Sleep { ms } | Self::IgnoreCancel { ms } if *ms > MAX_JOB_MS => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("ms must be at most {MAX_JOB_MS}, got {ms}"),
            )),
            Self::Fail { message } if message.len() > MAX_MESSAGE_BYTES => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("message must be at most {MAX_MESSAGE_BYTES} bytes"),
            )),
            _ => Ok(()),
        }
    }
}

/// `POST /jobs`: `202 Accepted` with `{"job_id": "..."}` and a `Location` header.
async fn submit_job(
    State(worker): State<Worker>,
    body: Result<Json<JobSpec>, JsonRejection>,
) -> Result<Response, ApiError> {
    // Malformed JSON (400), a wrong content type (415), an unknown kind or a missing field (422),
    // an oversized body (413): axum's rejection knows the status, we only make the body JSON.
    let Json(spec) = body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    spec.validate()?;

    // Random v4 UUIDs: ids cannot be guessed, so one client cannot look up or cancel another's job.
    let job_id = uuid::Uuid::new_v4().to_string();
    let kind = spec.kind();
    let submitted = match spec {
        JobSpec::Sleep { ms } => {
            worker
                .submit_with_context(job_id.clone(), move |ctx| sleep_job(ctx, ms))
                .await
        }
        JobSpec::Fail { message } => {
            worker
                .submit(
                    job_id.clone(),
                    move || async move { Err(anyhow::Error::msg(message)) },
                )
                .await
        }
        JobSpec::Panic => {
            worker
                .submit(job_id.clone(), || async { panic!("the job asked to panic") })
                .await
        }
        JobSpec::IgnoreCancel { ms } => {
            worker
                .submit_with_context(job_id.clone(), move |_ctx| async move {
                    // Never looks at its token: cancel and shutdown must abort it.
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(())
                })
                .await
        }
    };
    match submitted {
        Ok(()) => {
            tracing::info!(job_id = %job_id, kind, "job accepted");
            let location = format!("/jobs/{job_id}");
            Ok((
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(json!({ "job_id": job_id })),
            )
                .into_response())
        }
        Err(error @ SubmitError::ShuttingDown { .. }) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()))
        }
        // The worker's `max_tracked` bound: finished jobs will age out, retry later.
        Err(error @ SubmitError::AtCapacity { .. }) => {
            Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, error.to_string()))
        }
        Err(error @ SubmitError::DuplicateId { .. }) => {
            Err(ApiError::new(StatusCode::CONFLICT, error.to_string()))
        }
        Err(error) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error.to_string(),
        )),
    }
}

/// The `sleep` job: sleeps in steps of at most a tenth of the total, reporting progress after
/// each, and returns early when cancelled.
async fn sleep_job(ctx: TaskContext, ms: u64) -> anyhow::Result<()> {
    // Every start and end of a body, for the fault tests' histories (`tests/cluster_faults.rs`).
    struct Ended<'a>(&'a str);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            tracing::info!(job_id = %self.0, "job body ended");
        }
    }
    tracing::info!(job_id = %ctx.id(), "job body started");
    let _ended = Ended(ctx.id());
    let total = Duration::from_millis(ms);
    let step = (total / 10).clamp(Duration::from_millis(1), Duration::from_millis(500));
    let started = tokio::time::Instant::now();
    loop {
        let elapsed = started.elapsed().min(total);
        let done = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        ctx.set_progress(Progress::counter(done, ms).with_message(format!("slept {done} of {ms} ms")));
        if elapsed >= total {
            return Ok(());
        }
        tokio::select! {
            () = ctx.cancelled() => return Ok(()), // the worker records it as cancelled
            () = tokio::time::sleep(step.min(total - elapsed)) => {}
        }
    }
}

/// `GET /jobs/{id}`: the job with its status, progress and timings.
async fn show_job(
    State(worker): State<Worker>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let Path(id) = id.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    worker
        .task_info(&id)
        .map(|info| Json(JobView::from(info)))
        .ok_or_else(|| ApiError::not_found(&id))
}

/// `DELETE /jobs/{id}`: cancels the job (waiting up to the cancel timeout) and answers the job as
/// it ended. Cancelling a finished job changes nothing and answers its status.
async fn cancel_job(
    State(worker): State<Worker>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let Path(id) = id.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let status = match worker.cancel(&id).await {
        Ok(status) => status,
        Err(CancelError::NotFound { .. }) => return Err(ApiError::not_found(&id)),
        Err(error) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.to_string(),
            ))
        }
    };
    tracing::info!(job_id = %id, %status, "job cancel requested");
    match worker.task_info(&id) {
        Some(info) => Ok(Json(JobView::from(info))),
        // Only if someone removed the entry meanwhile; the final status is still known.
        None => Ok(Json(JobView::bare(id, status))),
    }
}

/// `GET /jobs`: every tracked job with its status, oldest first.
async fn list_jobs(State(worker): State<Worker>) -> Json<serde_json::Value> {
    let mut tasks = worker.tasks();
    tasks.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then_with(|| a.id.cmp(&b.id)));
    let jobs: Vec<JobSummary> = tasks
        .into_iter()
        .map(|info| JobSummary {
            job_id: info.id,
            status: info.status,
        })
        .collect();
    Json(json!({ "count": jobs.len(), "jobs": jobs }))
}

/// `GET /health`: job counts per status and whether jobs are accepted; `503` once shutdown began,
/// so a load balancer stops sending work here.
async fn health(State(worker): State<Worker>) -> Response {
    let health = worker.health();
    let status = if health.accepting {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

/// One line of `GET /jobs`: `{"job_id": "...", "status": "failed", "message": "..."}`.
#[derive(Debug, Serialize)]
struct JobSummary {
    job_id: String,
    #[serde(flatten)]
    status: TaskStatus,
}

/// The answer of `GET /jobs/{id}` and `DELETE /jobs/{id}`. Times are milliseconds (since the Unix
/// epoch for the `_at` fields).
#[derive(Debug, Serialize)]
struct JobView {
    job_id: String,
    /// `"status": "pending" | "running" | "completed" | "failed" | "cancelled"`, plus
    /// `"message"` for a failed job.
    #[serde(flatten)]
    status: TaskStatus,
    progress: Option<Progress>,
    submitted_at_ms: Option<u64>,
    started_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    queued_ms: Option<u64>,
    run_time_ms: Option<u64>,
}

impl From<TaskInfo> for JobView {
    fn from(info: TaskInfo) -> Self {
        Self {
            job_id: info.id,
            status: info.status,
            progress: info.progress,
            submitted_at_ms: unix_ms(info.submitted_at),
            started_at_ms: info.started_at.and_then(unix_ms),
            finished_at_ms: info.finished_at.and_then(unix_ms),
            queued_ms: Some(millis(info.queued)),
            run_time_ms: info.run_time.map(millis),
        }
    }
}

impl JobView {
    fn bare(job_id: String, status: TaskStatus) -> Self {
        Self {
            job_id,
            status,
            progress: None,
            submitted_at_ms: None,
            started_at_ms: None,
            finished_at_ms: None,
            queued_ms: None,
            run_time_ms: None,
        }
    }
}

fn unix_ms(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// An error answer: `{"error": "..."}` with a status code.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no job with id {id:?}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}
