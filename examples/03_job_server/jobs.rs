//! `POST /jobs`: the demo's job kinds, and the one route the console leaves to the application.
//!
//! Every error is the console's JSON body `{"error": "..."}` ([`ApiError`]): `4xx` for bad
//! input, `429` with `Retry-After` at capacity, `503` while shutting down.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use background_worker::console::ApiError;
use background_worker::{Progress, TaskContext, Worker};
use serde::Deserialize;
use serde_json::json;

/// Request bodies above this get `413 Payload Too Large` (from `Content-Length`, unread).
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest demo job accepted; longer ones get `422`.
pub(crate) const MAX_JOB_MS: u64 = 10 * 60 * 1_000;
/// Longest failure message accepted (in bytes).
const MAX_MESSAGE_BYTES: usize = 1_024;

/// `POST /jobs`, to merge into the console's router.
pub(crate) fn router(worker: Worker) -> Router {
    Router::new().route("/jobs", post(submit_job)).with_state(worker)
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
        Err(refused) => Err(ApiError::from_submit(&refused)),
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
