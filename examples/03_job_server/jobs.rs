//! `POST /jobs`: the demo's job kinds, and the one route the console leaves to the application.
//!
//! A client may name its job: `"id"` in the body or an `Idempotency-Key` header (at most 128
//! bytes; both given must agree). With `--redis` such a submission is claimed for the whole
//! cluster (`RedisMirror::submit_with_context`): a live job with that id on any replica gets
//! `409` with `{"error": ..., "job": <the job as GET shows it>}`, and while Redis cannot be
//! reached a `503` with `Retry-After` (the job does not run). Without `--redis` the local rule
//! gives the same `409`. Without a client id the job gets a UUID and is submitted locally.
//!
//! Every error is the console's JSON body `{"error": "..."}` ([`ApiError`]): `4xx` for bad
//! input, `429` with `Retry-After` at capacity, `503` while shutting down.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use background_worker::console::{check_id, ApiError, Console};
#[cfg(feature = "redis")]
use background_worker::RedisMirror;
use background_worker::{Progress, TaskContext, Worker};
use serde::Deserialize;
use serde_json::json;

/// Request bodies above this get `413 Payload Too Large` (from `Content-Length`, unread).
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest demo job accepted; longer ones get `422`.
pub(crate) const MAX_JOB_MS: u64 = 10 * 60 * 1_000;
/// The header a client may name its job with instead of the body's `"id"`.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Longest failure message accepted (in bytes).
const MAX_MESSAGE_BYTES: usize = 1_024;

/// What `POST /jobs` submits through: the worker, the console (for the `409` with the job that
/// holds an id) and, with `--redis`, the mirror that claims client ids across the cluster.
#[derive(Clone)]
pub(crate) struct Jobs {
    worker: Worker,
    console: Console,
    #[cfg(feature = "redis")]
    mirror: Option<RedisMirror>,
}

impl Jobs {
    pub(crate) fn new(worker: Worker, console: Console) -> Self {
        Self {
            worker,
            console,
            #[cfg(feature = "redis")]
            mirror: None,
        }
    }

    /// Claims client ids through `mirror` (with `--redis`).
    #[cfg(feature = "redis")]
    #[allow(dead_code)] // tests/server.rs includes this file and runs it without a mirror
    pub(crate) fn mirror(mut self, mirror: Option<RedisMirror>) -> Self {
        self.mirror = mirror;
        self
    }

    /// `POST /jobs`, to merge into the console's router.
    pub(crate) fn router(self) -> Router {
        Router::new().route("/jobs", post(submit_job)).with_state(self)
    }

    /// Submits `spec` under the client's `id`: a claimed submission with a mirror (refused with
    /// `409` while a job with that id is live anywhere, `503` while Redis cannot be reached),
    /// the local rule without (`409` while it is live here). Returns the fencing token of a
    /// claimed submission.
    async fn submit_client_id(&self, id: &str, spec: JobSpec) -> Result<Option<u64>, ApiError> {
        #[cfg(feature = "redis")]
        if let Some(mirror) = &self.mirror {
            return match mirror
                .submit_with_context(id, move |ctx, _token| run(ctx, spec))
                .await
            {
                Ok(token) => Ok(Some(token.get())),
                Err(refused) => Err(self.console.claim_refused(&refused).await),
            };
        }
        match self
            .worker
            .submit_with_context(id, move |ctx| run(ctx, spec))
            .await
        {
            Ok(()) => Ok(None),
            Err(refused) => Err(self.console.submit_refused(&refused).await),
        }
    }
}

/// The body of `POST /jobs`: an optional client id beside the job's kind and its fields.
#[derive(Debug, Deserialize)]
struct JobRequest {
    /// The client's id for the job (else the `Idempotency-Key` header, else a UUID).
    #[serde(default)]
    id: Option<String>,
    #[serde(flatten)]
    spec: JobSpec,
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

/// `POST /jobs`: `202 Accepted` with `{"job_id": "..."}` (and `"fencing_token"` for a claimed
/// submission) and a `Location` header.
async fn submit_job(
    State(jobs): State<Jobs>,
    headers: HeaderMap,
    body: Result<Json<JobRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    // Malformed JSON (400), a wrong content type (415), an unknown kind or a missing field (422),
    // an oversized body (413): axum's rejection knows the status, we only make the body JSON.
    let Json(request) = body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    let spec = request.spec;
    spec.validate()?;
    let client_id = client_id(&headers, request.id)?;

    let kind = spec.kind();
    let (job_id, fencing_token) = match client_id {
        Some(id) => {
            let token = jobs.submit_client_id(&id, spec).await?;
            (id, token)
        }
        None => {
            // Random v4 UUIDs: ids cannot be guessed, so one client cannot look up or cancel
            // another's job. Submitted locally: these keep working while Redis is down.
            let id = uuid::Uuid::new_v4().to_string();
            jobs.worker
                .submit_with_context(id.clone(), move |ctx| run(ctx, spec))
                .await
                .map_err(|refused| ApiError::from_submit(&refused))?;
            (id, None)
        }
    };
    tracing::info!(job_id = %job_id, kind, fencing_token, "job accepted");
    let location = format!("/jobs/{job_id}");
    let mut answer = json!({ "job_id": job_id });
    if let Some(token) = fencing_token {
        answer["fencing_token"] = token.into();
    }
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(answer)).into_response())
}

/// The client's id: the body's `"id"` or the `Idempotency-Key` header (the same if both are
/// given), checked by the console's id rules.
fn client_id(headers: &HeaderMap, body_id: Option<String>) -> Result<Option<String>, ApiError> {
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message);
    let mut keys = headers.get_all(IDEMPOTENCY_KEY).iter();
    let header_id = match (keys.next(), keys.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(bad("more than one Idempotency-Key header")),
        (Some(key), None) => Some(
            key.to_str()
                .map_err(|_| bad("invalid Idempotency-Key header: not visible ASCII"))?
                .to_owned(),
        ),
    };
    let id = match (header_id, body_id) {
        (Some(key), Some(id)) if key != id => {
            return Err(bad("the Idempotency-Key header and the body's id differ"))
        }
        (key, id) => key.or(id),
    };
    if let Some(id) = &id {
        check_id(id)?;
    }
    Ok(id)
}

/// Runs one demo job.
async fn run(ctx: TaskContext, spec: JobSpec) -> anyhow::Result<()> {
    match spec {
        JobSpec::Sleep { ms } => sleep_job(ctx, ms).await,
        JobSpec::Fail { message } => Err(anyhow::Error::msg(message)),
        JobSpec::Panic => panic!("the job asked to panic"),
        JobSpec::IgnoreCancel { ms } => {
            // Never looks at its token: cancel and shutdown must abort it.
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
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
