//! The answers to a refused submission with the job that holds its id: the `409` body
//! `{"error": ..., "job": <the job as GET /jobs/{id} shows it>}` for an application's `POST /jobs`.

use super::error::ApiError;
use super::json::JobView;
use super::Console;
use crate::error::SubmitError;

impl Console {
    /// The answer to a submission the local worker refused: [`ApiError::from_submit`], and for
    /// a duplicate id (`409`) the live job that holds it under `"job"`, as `GET /jobs/{id}`
    /// shows it (with its `"replica"` and `"fencing_token"` when there is a mirror).
    ///
    /// If the job ended and left between the refusal and the lookup, the `409` has no `"job"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use background_worker::console::Console;
    /// use background_worker::Worker;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let worker = Worker::new();
    /// let console = Console::new(worker.clone());
    /// worker.submit_with_context("user-sync-42", |ctx| async move { ctx.cancelled().await; Ok(()) }).await.unwrap();
    ///
    /// let refused = worker.submit("user-sync-42", || async { Ok(()) }).await.unwrap_err();
    /// let error = console.submit_refused(&refused).await;
    /// assert_eq!(error.status(), StatusCode::CONFLICT);
    /// assert_eq!(error.job().unwrap()["job_id"], "user-sync-42");
    /// # }
    /// ```
    pub async fn submit_refused(&self, refused: &SubmitError) -> ApiError {
        let error = ApiError::from_submit(refused);
        match refused {
            SubmitError::DuplicateId { id } => self.with_holder(error, id).await,
            _ => error,
        }
    }

    /// The answer to a refused claimed submission (`RedisMirror::submit`, feature `redis`):
    /// [`ApiError::from_claim`], and for an id held anywhere in the cluster (`409`) the job
    /// that holds it under `"job"`, as `GET /jobs/{id}` shows it: its `"replica"` and, if it
    /// was claimed, its `"fencing_token"`. While Redis cannot be reached the answer is a `503`
    /// with `Retry-After`, and the task did not run.
    ///
    /// If the job cannot be read back (it ended and left, or Redis stopped answering between
    /// the refusal and the lookup), the `409` has no `"job"`; its message still names the
    /// replica.
    ///
    /// # Examples
    ///
    /// An application's claimed `POST /jobs/{id}` in a few lines:
    ///
    /// ```
    /// use axum::extract::{Path, State};
    /// use axum::http::StatusCode;
    /// use axum::Json;
    /// use background_worker::console::{check_id, ApiError, Console};
    /// use background_worker::RedisMirror;
    ///
    /// #[derive(Clone)]
    /// struct App {
    ///     console: Console,
    ///     mirror: RedisMirror,
    /// }
    ///
    /// async fn submit(
    ///     State(app): State<App>,
    ///     Path(id): Path<String>,
    /// ) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    ///     check_id(&id)?;
    ///     let token = match app.mirror.submit(id.clone(), |_token| async { Ok(()) }).await {
    ///         Ok(token) => token,
    ///         Err(refused) => return Err(app.console.claim_refused(&refused).await),
    ///     };
    ///     let body = serde_json::json!({ "job_id": id, "fencing_token": token.get() });
    ///     Ok((StatusCode::ACCEPTED, Json(body)))
    /// }
    /// # let _ = axum::routing::post(submit);
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub async fn claim_refused(&self, refused: &crate::ClaimError) -> ApiError {
        match refused {
            crate::ClaimError::Submit(refused) => self.submit_refused(refused).await,
            crate::ClaimError::Held { id, .. } => self.with_holder(ApiError::from_claim(refused), id).await,
            other => ApiError::from_claim(other),
        }
    }

    /// `error` with the job `id` as `GET /jobs/{id}` would show it, if it can be read.
    async fn with_holder(&self, error: ApiError, id: &str) -> ApiError {
        match self.find(id).await {
            Some(job) => error.with_job(&job),
            None => error,
        }
    }

    /// The job `id` as `GET /jobs/{id}` shows it; `None` when unknown or unreadable.
    async fn find(&self, id: &str) -> Option<JobView> {
        match self.lookup(id).await {
            Ok(job) => job,
            Err(cause) => {
                tracing::warn!(job_id = %id, cause = %cause.message(), "the job holding a refused id could not be read");
                None
            }
        }
    }
}
