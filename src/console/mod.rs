//! A jobs console for operators (feature `axum`): an axum [`Router`](axum::Router) to mount
//! under any prefix, over a [`Worker`](crate::Worker) and, with the `redis` feature, its
//! `RedisMirror`; and the pieces an application's own `POST /jobs` needs.
//!
//! - [`Console`] builds the router: `GET /jobs` (paged, newest first), `GET /jobs/{id}`,
//!   `DELETE /jobs/{id}` (cancel, bounded), `GET /health`, `GET /events` (Server-Sent Events),
//!   `GET /dashboard` (a page with no build step, no CDN, no inline script), and `GET /metrics`
//!   with the `metrics` feature, `GET /schedules` (the worker's schedules) and
//!   `GET /jobs?schedule=NAME` (a schedule's runs). Every error is a JSON body.
//! - [`JobIndex`] keeps the worker's jobs in submission order (as an
//!   [`Observer`](crate::Observer)), so a page costs the same at 1 000 or 100 000 jobs.
//! - [`ApiError`], [`check_id`], [`JobView`] and [`JobPage`]: the error answers (`409`, `429`
//!   and `503` with `Retry-After`), the id rules and the JSON shapes, for the application's own
//!   handlers; [`Console::submit_refused`] and, with a mirror, [`Console::claim_refused`] for
//!   the `409` that carries the job holding the id.
//! - [`serve`] and [`Serving`]: a server loop with the settings a public listener needs
//!   (header-read and idle timeouts, a request timeout, a body limit checked from
//!   `Content-Length`, a cap on open connections), on hyper's and tower-http's settings.
//!
//! The console has no authentication of its own: put the application's auth layer in front of
//! it (see `docs/console.md` for a bearer-token example).
//!
//! # Examples
//!
//! An application's `POST /jobs` next to the console:
//!
//! ```
//! use axum::extract::State;
//! use axum::http::StatusCode;
//! use axum::routing::post;
//! use axum::{Json, Router};
//! use background_worker::console::{ApiError, Console, JobIndex};
//! use background_worker::Worker;
//!
//! async fn submit(State(worker): State<Worker>) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
//!     let id = format!("job-{}", worker.task_count());
//!     worker
//!         .submit(id.clone(), || async { Ok(()) })
//!         .await
//!         .map_err(|refused| ApiError::from_submit(&refused))?;
//!     Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "job_id": id }))))
//! }
//!
//! let index = JobIndex::new(10_000);
//! let worker = Worker::builder().max_tracked(10_000).observer(index.clone()).build();
//! let app: Router = Console::new(worker.clone())
//!     .index(index)
//!     .router()
//!     .merge(Router::new().route("/jobs", post(submit)).with_state(worker));
//! ```

mod assets;
mod claim;
#[cfg(feature = "redis")]
mod cluster;
mod error;
mod events;
mod index;
mod json;
mod lookup;
mod paging;
mod router;
mod schedules;
mod serve;
mod shared;

pub use assets::CONTENT_SECURITY_POLICY;
pub use error::{check_id, ApiError, MAX_ID_BYTES, RETRY_AFTER_SECS};
pub use index::JobIndex;
pub use json::{JobPage, JobView};
pub use paging::{DEFAULT_LIMIT, MAX_LIMIT};
pub use router::{Console, DEFAULT_CANCEL_WAIT};
pub use serve::{serve, Serving};
