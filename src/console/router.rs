//! [`Console`]: the settings of the console and the [`Router`] it builds.

use std::fmt;
#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
#[cfg(feature = "metrics")]
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::assets;
use super::error::{check_id, ApiError};
use super::events;
use super::index::JobIndex;
use super::json::{JobPage, JobView};
use super::paging::ListQuery;
use super::shared::Shared;
use crate::error::CancelError;
use crate::worker::Worker;

/// How long `DELETE /jobs/{id}` waits for the job's end beyond the worker's own cancel timeout
/// (which bounds a local cancel by itself) unless [`Console::cancel_wait`] says otherwise.
pub const DEFAULT_CANCEL_WAIT: Duration = Duration::from_secs(6);

/// A jobs console over a [`Worker`] (and, with the `redis` feature, its `RedisMirror`): the
/// settings, and [`router`](Console::router) to build the axum [`Router`] that serves it.
///
/// The router answers, under whatever prefix it is nested:
///
/// | route | answer |
/// |-------|--------|
/// | `GET /jobs?limit=N&cursor=C&status=S&replica=R` | a [`JobPage`], newest first (see below) |
/// | `GET /jobs/{id}` | the [`JobView`], or `404` |
/// | `DELETE /jobs/{id}` | cancels the job, waits a bounded time, answers its [`JobView`]; `404` if unknown |
/// | `GET /jobs?schedule=NAME&limit=N&cursor=C&status=S` | a schedule's runs (its ticks' jobs), newest tick first, across the cluster with a mirror |
/// | `GET /schedules` | every schedule of the worker: `name`, `cadence`, `next_run` (ms since the epoch), `paused`, `last_run` (a [`JobView`]), `runs`, `skipped`, `run_elsewhere` |
/// | `GET /health` | the worker's [`Health`](crate::Health) (and the mirror's under `"mirror"`); `503` when it does not accept work |
/// | `GET /events` | Server-Sent Events: one event per status change, named after the status, the [`JobView`] as `data:`; `lagged` when the client fell behind |
/// | `GET /dashboard` | the dashboard page, with `/dashboard.js` and `/dashboard.css` |
/// | `GET /metrics` | with the `metrics` feature and [`metrics`](Console::metrics) set: the application's rendering |
///
/// Every error is a JSON body `{"error": "..."}` ([`ApiError`]), including unknown routes
/// (`404`) and methods (`405`). Submitting is the application's own: add a `POST /jobs` to the
/// router, with [`ApiError::from_submit`] for refusals.
///
/// **Paging.** `limit` defaults to 100, at most 1 000. Follow `next_cursor` until it is `null`;
/// a cursor that is not one is a `400`. Locally, with a [`JobIndex`], a page costs the same
/// with 1 000 or 100 000 jobs; without one, each page sorts a snapshot of every job. A filtered
/// page looks at no more than 10 000 jobs and may end early with a `next_cursor`. Unknown query
/// parameters are ignored. Without a mirror jobs have no replica, and a `replica` filter
/// matches nothing. With a mirror the pages come from Redis's sorted set in the mirror's order
/// (oldest submission first, as `RedisMirror::jobs` lists them); this replica's own jobs on a
/// page are shown as its worker knows them now. While Redis does not answer, the first page
/// comes from this replica alone, with `"cluster": false` and the cause in `"error"`.
///
/// **Events** are this replica's: with a mirror, `/events` still streams only the status
/// changes of the jobs this process runs.
///
/// # Examples
///
/// ```
/// use axum::routing::post;
/// use axum::Router;
/// use background_worker::console::{Console, JobIndex};
/// use background_worker::Worker;
///
/// let index = JobIndex::new(10_000);
/// let worker = Worker::builder().max_tracked(10_000).observer(index.clone()).build();
/// let console = Console::new(worker.clone()).index(index).router();
/// // Mounted under a prefix, next to the application's own routes.
/// let app: Router = Router::new().nest("/admin/jobs", console);
/// ```
#[derive(Clone)]
pub struct Console {
    pub(super) shared: Shared,
    cancel_wait: Duration,
    read_only: bool,
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    fanout: events::Fanout,
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("worker", &self.shared.worker.name())
            .field("index", &self.shared.index.is_some())
            .field("cancel_wait", &self.cancel_wait)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console over `worker`, without an index, a mirror or metrics, with cancel enabled.
    ///
    /// ```
    /// let console = background_worker::console::Console::new(background_worker::Worker::new());
    /// # let _ = console;
    /// ```
    #[must_use]
    pub fn new(worker: Worker) -> Self {
        Self {
            shared: Shared::new(worker),
            cancel_wait: DEFAULT_CANCEL_WAIT,
            read_only: false,
            #[cfg(feature = "metrics")]
            metrics: None,
            fanout: events::Fanout::default(),
        }
    }

    /// Pages `GET /jobs` through `index`, which must be registered on the worker's builder as
    /// an observer (see [`JobIndex`]).
    ///
    /// ```
    /// use background_worker::console::{Console, JobIndex};
    /// use background_worker::Worker;
    ///
    /// let index = JobIndex::new(1_000);
    /// let worker = Worker::builder().observer(index.clone()).build();
    /// let console = Console::new(worker).index(index);
    /// # let _ = console;
    /// ```
    #[must_use]
    pub fn index(mut self, index: JobIndex) -> Self {
        self.shared.index = Some(index);
        self
    }

    /// How long `DELETE /jobs/{id}` waits at most for the job's end (default
    /// [`DEFAULT_CANCEL_WAIT`]). A local cancel is also bounded by the worker's cancel timeout,
    /// after which the job is aborted; with a mirror, another replica's job is waited for this
    /// long, then answered as last seen. Give it the cancel timeout plus a second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use background_worker::console::Console;
    /// use background_worker::Worker;
    ///
    /// let worker = Worker::builder().cancel_timeout(Duration::from_secs(2)).build();
    /// let console = Console::new(worker).cancel_wait(Duration::from_secs(3));
    /// # let _ = console;
    /// ```
    #[must_use]
    pub fn cancel_wait(mut self, wait: Duration) -> Self {
        self.cancel_wait = wait;
        self
    }

    /// A read-only console: no `DELETE /jobs/{id}` route (`405`), and no cancel buttons on the
    /// dashboard.
    ///
    /// ```
    /// let console = background_worker::console::Console::new(background_worker::Worker::new()).read_only(true);
    /// # let _ = console;
    /// ```
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Answers for the whole cluster through `mirror` (feature `redis`): lookups, pages and
    /// cancels of every replica's jobs, and the mirror's health under `/health`'s `"mirror"`.
    ///
    /// ```no_run
    /// use background_worker::console::Console;
    /// use background_worker::{RedisMirror, Worker};
    ///
    /// # fn main() -> Result<(), background_worker::ClusterError> {
    /// let mirror = RedisMirror::builder("redis://127.0.0.1:6379").build()?;
    /// let worker = Worker::builder().observer(mirror.observer()).build();
    /// mirror.start(&worker)?;
    /// let app: axum::Router = Console::new(worker).mirror(mirror).router();
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn mirror(mut self, mirror: crate::redis::RedisMirror) -> Self {
        self.shared.mirror = Some(mirror);
        self
    }

    /// Serves `GET /metrics` (feature `metrics`) with the text `render` returns, as the
    /// Prometheus text format. The crate depends on no exporter: pass the exporter's render
    /// function, e.g. `move || handle.render()` for a `metrics-exporter-prometheus` handle.
    ///
    /// ```
    /// use background_worker::console::Console;
    /// use background_worker::Worker;
    ///
    /// let console = Console::new(Worker::new()).metrics(|| "# no metrics yet\n".to_owned());
    /// # let _ = console;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    #[must_use]
    pub fn metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }

    /// The router, ready to be nested under any prefix or merged with the application's routes
    /// (its state is already applied). Its fallback answers unknown routes with a JSON `404`;
    /// nest it rather than merging it into a router with a fallback of its own.
    ///
    /// ```
    /// use background_worker::console::Console;
    /// use background_worker::Worker;
    ///
    /// let app = axum::Router::new().nest("/jobs-console", Console::new(Worker::new()).router());
    /// # let _: axum::Router = app;
    /// ```
    pub fn router(self) -> Router {
        let jobs_id = if self.read_only {
            get(show_job)
        } else {
            get(show_job).delete(cancel_job)
        };
        let dashboard = assets::Dashboard::new(self.read_only);
        #[allow(unused_mut)]
        let mut router =
            Router::new()
                .route("/jobs", get(list_jobs))
                .route("/jobs/{id}", jobs_id)
                .route("/health", get(health))
                .route(
                    "/schedules",
                    get(|State(console): State<Console>| async move {
                        Json(super::schedules::list(&console.shared))
                    }),
                )
                .route(
                    "/events",
                    get(|State(console): State<Console>| async move {
                        events::stream(&console.fanout, console.shared)
                    }),
                );
        #[cfg(feature = "metrics")]
        if self.metrics.is_some() {
            router = router.route("/metrics", get(metrics));
        }
        router
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
            .method_not_allowed_fallback(|| async {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
            })
            .with_state(self)
            .merge(dashboard.router())
    }
}

/// The id from the path, checked.
fn job_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    check_id(&id)?;
    Ok(id)
}

async fn list_jobs(
    State(console): State<Console>,
    RawQuery(query): RawQuery,
) -> Result<Json<JobPage>, ApiError> {
    let query = ListQuery::parse(query.as_deref())?;
    if let Some(name) = &query.schedule {
        return super::schedules::runs(&console.shared, name, &query)
            .await
            .map(Json);
    }
    #[cfg(feature = "redis")]
    if let Some(mirror) = &console.shared.mirror {
        return super::cluster::page(&console.shared, mirror, &query)
            .await
            .map(Json);
    }
    console.shared.local_page(&query).map(Json)
}

async fn show_job(
    State(console): State<Console>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(id)?;
    match console.lookup(&id).await? {
        Some(view) => Ok(Json(view)),
        None => Err(ApiError::not_found(&id)),
    }
}

async fn cancel_job(
    State(console): State<Console>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(id)?;
    let worker = &console.shared.worker;
    if console.cancels_locally(&id) {
        // The worker's own cancel is bounded by its cancel timeout (then it aborts); the wait
        // bounds it again in case the timeout is set longer than this console waits.
        match tokio::time::timeout(console.cancel_wait, worker.cancel(&id)).await {
            Ok(Ok(status)) => {
                tracing::info!(job_id = %id, %status, "job cancel requested");
                return Ok(Json(match worker.task_info(&id) {
                    Some(info) => console.shared.view(info),
                    None => JobView::bare(id, &status),
                }));
            }
            Ok(Err(CancelError::NotFound { .. })) => {}
            Err(_) => {
                if let Some(info) = worker.task_info(&id) {
                    return Ok(Json(console.shared.view(info)));
                }
            }
        }
    }
    #[cfg(feature = "redis")]
    if let Some(mirror) = &console.shared.mirror {
        return match mirror.cancel(&id, console.cancel_wait).await {
            Ok(Some(job)) => {
                tracing::info!(job_id = %id, replica = %job.replica, status = %job.status, "cluster cancel requested");
                Ok(Json(JobView::from(job)))
            }
            // Redis does not know it, or does not answer: this worker's finished job, if any.
            result => match worker.task_info(&id) {
                Some(info) => Ok(Json(console.shared.view(info))),
                None => match result {
                    Err(cause) => Err(unavailable(&cause)),
                    Ok(_) => Err(ApiError::not_found(&id)),
                },
            },
        };
    }
    Err(ApiError::not_found(&id))
}

async fn health(State(console): State<Console>) -> Response {
    let health = console.shared.worker.health();
    let status = if health.accepting {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    #[allow(unused_mut)]
    let mut body = serde_json::to_value(&health).unwrap_or_default();
    #[cfg(feature = "redis")]
    if let Some(mirror) = &console.shared.mirror {
        body["mirror"] = serde_json::to_value(mirror.health()).unwrap_or_default();
    }
    (status, Json(body)).into_response()
}

#[cfg(feature = "metrics")]
async fn metrics(State(console): State<Console>) -> Response {
    let text = console
        .metrics
        .as_ref()
        .map(|render| render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

#[cfg(feature = "redis")]
pub(super) fn unavailable(cause: &crate::redis::ClusterError) -> ApiError {
    if let crate::redis::ClusterError::NotKnownYet { retry_after, .. } = cause {
        // Redis began serving its current data less than a lease ago: the job may exist, so
        // this is not a 404 (see the crate docs, *Redis mirror*).
        let seconds = u64::try_from(retry_after.as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, cause.to_string()).retry_after(seconds.max(1));
    }
    tracing::warn!(%cause, "cluster view unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the cluster view is unavailable ({cause}); this replica answers for its own jobs"),
    )
    .retry_after(super::error::RETRY_AFTER_SECS)
}
