//! [`ApiError`]: every error the console answers, as a JSON body; and the id rules.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

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
        let mut response = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
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
