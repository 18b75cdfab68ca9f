//! [`ApiError`]: every error the console answers, as a JSON body; and the id rules.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::json::JobView;
use crate::error::SubmitError;

/// Longest job id the console accepts in a path, and longest part of any id it echoes back, in
/// bytes. Longer ids are refused with `400` before any lookup.
pub const MAX_ID_BYTES: usize = 128;

/// How long a client is told to wait (`Retry-After`, in seconds) after a `429` or a `503` from
/// [`ApiError::from_submit`].
pub const RETRY_AFTER_SECS: u64 = 1;

/// An error answer: a status code and a JSON body `{"error": "..."}`, with `Retry-After` when
/// retrying later may work.
///
/// Every error the console's router answers has this shape, the HTTP layer's too (a timeout, a
/// body over the limit, an unknown route). Use it in the application's own handlers, for
/// example `POST /jobs`, so that clients see one error format.
///
/// # Examples
///
/// ```
/// use axum::http::StatusCode;
/// use axum::response::IntoResponse;
/// use background_worker::console::ApiError;
///
/// let response = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ms must be at most 600000").into_response();
/// assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    job: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with this status and message.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use background_worker::console::ApiError;
    ///
    /// let error = ApiError::new(StatusCode::CONFLICT, "taken");
    /// assert_eq!((error.status(), error.message()), (StatusCode::CONFLICT, "taken"));
    /// ```
    #[must_use]
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            job: None,
        }
    }

    /// Adds a `Retry-After` header of `seconds`.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use axum::response::IntoResponse;
    /// use background_worker::console::ApiError;
    ///
    /// let response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy").retry_after(5).into_response();
    /// assert_eq!(response.headers()["retry-after"], "5");
    /// ```
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds the job the error is about as `"job"` beside `"error"` in the body: the `409` of a
    /// refused submission carries the job that holds the id, as `GET /jobs/{id}` shows it (see
    /// [`Console::submit_refused`](super::Console::submit_refused)).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use background_worker::console::{ApiError, JobView};
    /// use background_worker::TaskStatus;
    ///
    /// let error = ApiError::new(StatusCode::CONFLICT, "taken").with_job(&JobView::bare("a1", &TaskStatus::Running));
    /// assert_eq!(error.job().unwrap()["status"], "running");
    /// ```
    #[must_use]
    pub fn with_job(mut self, job: &JobView) -> Self {
        self.job = serde_json::to_value(job).ok();
        self
    }

    /// The job of the body's `"job"`, if there is one (see [`with_job`](ApiError::with_job)).
    #[must_use]
    pub fn job(&self) -> Option<&serde_json::Value> {
        self.job.as_ref()
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message of the JSON body.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `404` for a job id, echoing at most [`MAX_ID_BYTES`] of it.
    ///
    /// ```
    /// use background_worker::console::ApiError;
    ///
    /// let error = ApiError::not_found(&"x".repeat(65_536));
    /// assert!(error.message().len() < 200);
    /// ```
    #[must_use]
    pub fn not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no job with id {}", Echo(id)))
    }

    /// The answer to a refused submission: `409 Conflict` for an id that is live, `429 Too Many
    /// Requests` at capacity and `503 Service Unavailable` while shutting down (both with
    /// `Retry-After`), `400` for an invalid id. The message names the id only where the client
    /// chose it (`409`, `400`), and then at most [`MAX_ID_BYTES`] of it: an application that
    /// makes its ids up does not tell the client about an id it never saw.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use background_worker::console::ApiError;
    /// use background_worker::Worker;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::builder().max_tracked(1).build();
    /// worker.submit_with_context("a", |ctx| async move { ctx.cancelled().await; Ok(()) }).await.unwrap();
    /// let refused = worker.submit("job-7f3a", || async { Ok(()) }).await.unwrap_err();
    /// let error = ApiError::from_submit(&refused);
    /// assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
    /// assert!(!error.message().contains("job-7f3a"));
    /// # }
    /// ```
    #[must_use]
    pub fn from_submit(error: &SubmitError) -> Self {
        match error {
            SubmitError::DuplicateId { id } => Self::new(
                StatusCode::CONFLICT,
                format!("job {} is already pending or running", Echo(id)),
            ),
            SubmitError::InvalidId { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "invalid job id: it is empty")
            }
            SubmitError::AtCapacity { limit, .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("at capacity: all {limit} tracked jobs are pending or running, retry later"),
            )
            .retry_after(RETRY_AFTER_SECS),
            SubmitError::ShuttingDown { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down: no new jobs are accepted",
            )
            .retry_after(RETRY_AFTER_SECS),
        }
    }
}

#[cfg(feature = "redis")]
impl ApiError {
    /// The answer to a refused claimed submission (`RedisMirror::submit`, feature `redis`),
    /// without the job (see [`Console::claim_refused`](super::Console::claim_refused) for the
    /// `409` with it):
    ///
    /// | [`ClaimError`](crate::ClaimError) | status |
    /// |---|---|
    /// | `Held` | `409 Conflict`, naming the replica that holds the id |
    /// | `Unavailable` | `503` with `Retry-After: 1`: Redis cannot be reached, nothing runs |
    /// | `NotKnownYet` | `503` with `Retry-After` its `retry_after`, rounded up to whole seconds |
    /// | `Refused` | `503` with `Retry-After: 1`: this replica's run begins again |
    /// | `Submit` | as [`from_submit`](ApiError::from_submit) |
    /// | `NotStarted` | `500`: the application did not start its mirror |
    ///
    /// The message echoes at most [`MAX_ID_BYTES`] of the id.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use background_worker::console::ApiError;
    /// use background_worker::ClaimError;
    ///
    /// let error = ApiError::from_claim(&ClaimError::Unavailable { id: "user-sync-42".into(), reason: "timed out".into() });
    /// assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// ```
    #[must_use]
    pub fn from_claim(error: &crate::ClaimError) -> Self {
        use crate::ClaimError;
        match error {
            ClaimError::Held { id, replica, .. } => Self::new(
                StatusCode::CONFLICT,
                format!(
                    "job {} is already pending or running on replica {}",
                    Echo(id),
                    Echo(replica)
                ),
            ),
            ClaimError::Unavailable { id, .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "job {} was not submitted: redis is unavailable, retry later",
                    Echo(id)
                ),
            )
            .retry_after(RETRY_AFTER_SECS),
            ClaimError::NotKnownYet { id, retry_after, .. } => {
                let seconds = u64::try_from(retry_after.as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "job {} was not submitted: redis began serving its current data less than a lease ago, retry later",
                        Echo(id)
                    ),
                )
                .retry_after(seconds.max(1))
            }
            ClaimError::Refused { id, .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "job {} was not submitted: this replica is rejoining the cluster, retry later",
                    Echo(id)
                ),
            )
            .retry_after(RETRY_AFTER_SECS),
            ClaimError::Submit(refused) => Self::from_submit(refused),
            ClaimError::NotStarted => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the redis mirror is not started",
            ),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(job) = self.job {
            body["job"] = job;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Checks a job id taken from a request: not empty, at most [`MAX_ID_BYTES`] bytes.
///
/// # Examples
///
/// ```
/// use background_worker::console::check_id;
///
/// assert!(check_id("3f2c1d4e").is_ok());
/// assert_eq!(check_id(&"x".repeat(129)).unwrap_err().status(), 400);
/// assert!(check_id("").is_err());
/// ```
///
/// # Errors
///
/// A `400` [`ApiError`] naming the rule the id breaks (without echoing it).
pub fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid job id: it is empty",
        ));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid job id: longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// An id quoted for a message, cut to [`MAX_ID_BYTES`] (at a character boundary) with `...`.
struct Echo<'a>(&'a str);

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        if id.len() <= MAX_ID_BYTES {
            return write!(f, "{id:?}");
        }
        let mut end = MAX_ID_BYTES;
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{:?}...", &id[..end])
    }
}
