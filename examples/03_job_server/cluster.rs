//! The cluster view, with `--redis URL` (feature `redis`): every replica mirrors its jobs to
//! Redis through a [`RedisMirror`], and `GET /jobs/{id}`, `GET /jobs`, `DELETE /jobs/{id}` and
//! `GET /health` answer for the whole cluster. Everything else (`POST /jobs`, bad routes) is
//! the local API of `api.rs`, unchanged.
//!
//! A replica's own jobs are answered from its worker, without Redis; other replicas' jobs from
//! Redis, bounded by the mirror's query timeout. While Redis is down, a lookup of a job this
//! replica does not have answers `503`, the listing falls back to the local jobs, and
//! `/health` stays `200` with `"mirror": {"degraded": true, ...}`.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use background_worker::{ClusterJob, ClusterStatus, Progress, RedisMirror, Worker};
use serde::Serialize;
use serde_json::json;

use crate::config::Config;

/// Longest id looked up: job ids are UUIDs, anything much longer cannot be one.
const MAX_ID_BYTES: usize = 128;
/// Jobs listed at most by `GET /jobs`.
const MAX_LISTED: usize = 10_000;
/// The bound on the whole cluster listing before it falls back to the local jobs.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `close` may take on SIGTERM, after the drain, to flush the final statuses.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Namespace of the demo's keys in Redis.
const NAMESPACE: &str = "job-server";

#[derive(Clone)]
struct Cluster {
    worker: Worker,
    mirror: RedisMirror,
    /// How long a remote cancel waits for the job's end: the owner's cancel timeout plus one
    /// second of margin (same settings on every replica).
    cancel_wait: Duration,
}

/// The mirror for `--redis URL`, if given; an error message for bad settings.
pub(crate) fn mirror(config: &Config, retention: Duration) -> Result<Option<RedisMirror>, String> {
    let Some(url) = &config.redis else { return Ok(None) };
    let mut builder = RedisMirror::builder(url.as_str())
        .namespace(NAMESPACE)
        .lease(config.lease)
        .retain_finished_for(retention);
    if let Some(replica) = &config.replica {
        builder = builder.replica(replica.as_str());
    }
    builder.build().map(Some).map_err(|error| error.to_string())
}

/// The API with the cluster routes in front of the local ones.
pub(crate) fn router(worker: Worker, mirror: RedisMirror, cancel_timeout: Duration) -> Router {
    let local = crate::api::router(worker.clone());
    let cluster = Cluster {
        worker,
        mirror,
        cancel_wait: cancel_timeout + Duration::from_secs(1),
    };
    Router::new()
        .route("/jobs/{id}", get(show_job).delete(cancel_job))
        .route("/jobs", get(list_jobs).post_service(local.clone()))
        .route("/health", get(health))
        .fallback_service(local)
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
        })
        .with_state(cluster)
}

/// After the worker's drain: flush the final statuses and give the lease back.
pub(crate) async fn close(mirror: &RedisMirror) {
    match mirror.close(CLOSE_TIMEOUT).await {
        Ok(()) => tracing::info!("final statuses flushed to redis"),
        Err(error) => tracing::warn!(%error, "could not flush the final statuses to redis"),
    }
}

/// `GET /jobs/{id}`: this replica's job from its worker, another's from Redis.
async fn show_job(State(cluster): State<Cluster>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match job_id(id) {
        Ok(id) => id,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    if let Some(info) = cluster.worker.task_info(&id) {
        return Json(JobView::from(cluster.mirror.local_job(info))).into_response();
    }
    match cluster.mirror.job(&id).await {
        Ok(Some(job)) => Json(JobView::from(job)).into_response(),
        Ok(None) => not_found(&id),
        Err(cause) => unavailable(&cause),
    }
}

/// `DELETE /jobs/{id}`: cancels the job wherever it runs and answers it as it ended.
async fn cancel_job(State(cluster): State<Cluster>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match job_id(id) {
        Ok(id) => id,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let worker = &cluster.worker;
    if worker.has_task(&id) {
        let status = worker.cancel(&id).await;
        tracing::info!(job_id = %id, ?status, "job cancel requested");
        if let Some(info) = worker.task_info(&id) {
            return Json(JobView::from(cluster.mirror.local_job(info))).into_response();
        }
    }
    match cluster.mirror.cancel(&id, cluster.cancel_wait).await {
        Ok(Some(job)) => {
            tracing::info!(job_id = %id, replica = %job.replica, status = %job.status, "cluster cancel requested");
            Json(JobView::from(job)).into_response()
        }
        Ok(None) => not_found(&id),
        Err(cause) => unavailable(&cause),
    }
}

/// `GET /jobs`: every job of the cluster, oldest first (this replica's own ones always; the
/// others' only while Redis answers).
async fn list_jobs(State(cluster): State<Cluster>) -> Response {
    let listing = tokio::time::timeout(LIST_TIMEOUT, async {
        let mut jobs = Vec::new();
        let mut after = None;
        while jobs.len() < MAX_LISTED {
            let page = cluster.mirror.jobs(after.as_ref(), 500).await?;
            jobs.extend(page.jobs);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok::<_, background_worker::ClusterError>(jobs)
    })
    .await;
    let (mut jobs, cluster_error) = match listing {
        Ok(Ok(jobs)) => (jobs, None),
        Ok(Err(cause)) => (Vec::new(), Some(cause.to_string())),
        Err(_) => (
            Vec::new(),
            Some(format!("redis did not answer within {LIST_TIMEOUT:?}")),
        ),
    };
    // This replica's jobs as it knows them now (newer than, or missing from, the mirror).
    let local: Vec<ClusterJob> = cluster
        .worker
        .tasks()
        .into_iter()
        .map(|info| cluster.mirror.local_job(info))
        .collect();
    let ids: HashSet<&str> = local.iter().map(|job| job.id.as_str()).collect();
    jobs.retain(|job| !ids.contains(job.id.as_str()));
    jobs.extend(local);
    jobs.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then_with(|| a.id.cmp(&b.id)));
    jobs.truncate(MAX_LISTED);
    let summaries: Vec<JobSummary> = jobs
        .into_iter()
        .map(|job| JobSummary {
            job_id: job.id,
            status: job.status,
            replica: job.replica,
        })
        .collect();
    let mut body = json!({ "count": summaries.len(), "jobs": summaries, "cluster": cluster_error.is_none() });
    if let Some(cause) = cluster_error {
        body["error"] = json!(cause);
    }
    Json(body).into_response()
}

/// `GET /health`: the worker's health with the mirror's; `503` only once shutdown began.
async fn health(State(cluster): State<Cluster>) -> Response {
    let health = cluster.worker.health();
    let status = if health.accepting {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::to_value(&health).unwrap_or_default();
    body["mirror"] = serde_json::to_value(cluster.mirror.health()).unwrap_or_default();
    (status, Json(body)).into_response()
}

/// The id from the path, or why it cannot be a job id (`400`).
fn job_id(id: Result<Path<String>, PathRejection>) -> Result<String, String> {
    let Path(id) = id.map_err(|rejection| rejection.body_text())?;
    if id.len() > MAX_ID_BYTES {
        return Err(format!("not a job id: longer than {MAX_ID_BYTES} bytes"));
    }
    Ok(id)
}

/// One line of `GET /jobs`.
#[derive(Debug, Serialize)]
struct JobSummary {
    job_id: String,
    #[serde(flatten)]
    status: ClusterStatus,
    replica: String,
}

/// A job with `"replica"`, as `api.rs` shows a local one otherwise. Times are milliseconds
/// (since the Unix epoch for the `_at` fields).
#[derive(Debug, Serialize)]
struct JobView {
    job_id: String,
    /// `"status": "pending" | "running" | "completed" | "failed" | "cancelled" | "lost"`,
    /// plus `"message"` for a failed job.
    #[serde(flatten)]
    status: ClusterStatus,
    replica: String,
    progress: Option<Progress>,
    submitted_at_ms: Option<u64>,
    started_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    queued_ms: Option<u64>,
    run_time_ms: Option<u64>,
}

impl From<ClusterJob> for JobView {
    fn from(job: ClusterJob) -> Self {
        let now = SystemTime::now();
        let between = |from: SystemTime, to: SystemTime| millis(to.duration_since(from).unwrap_or_default());
        let queued_until = job.started_at.or(job.finished_at).unwrap_or(now);
        Self {
            queued_ms: Some(between(job.submitted_at, queued_until)),
            run_time_ms: job
                .started_at
                .map(|started| between(started, job.finished_at.unwrap_or(now))),
            submitted_at_ms: unix_ms(job.submitted_at),
            started_at_ms: job.started_at.and_then(unix_ms),
            finished_at_ms: job.finished_at.and_then(unix_ms),
            job_id: job.id,
            status: job.status,
            replica: job.replica,
            progress: job.progress,
        }
    }
}

fn unix_ms(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no job with id {id:?} on any replica"),
    )
}

fn unavailable(cause: &background_worker::ClusterError) -> Response {
    if let background_worker::ClusterError::NotKnownYet { retry_after, .. } = cause {
        // Redis began serving its current data less than a lease ago: not a 404.
        let seconds = retry_after.as_millis().div_ceil(1000).max(1).to_string();
        let mut response = error(StatusCode::SERVICE_UNAVAILABLE, cause.to_string());
        if let Ok(value) = axum::http::HeaderValue::from_str(&seconds) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    tracing::warn!(%cause, "cluster view unavailable");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the cluster view is unavailable ({cause}); this replica answers for its own jobs"),
    )
}
