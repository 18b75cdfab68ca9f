//! [`serve`] and [`Serving`]: serving a router to clients that may be slow, idle or hostile, by
//! the settings of hyper (header-read timeout, keep-alive) and tower-http (request timeout,
//! body limit), with a cap on open connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::error::ApiError;

/// How long the accept loop pauses after an accept error (out of file descriptors, mostly), so
/// that it does not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The settings [`serve`] applies. The defaults suit a public listener.
///
/// | setting | default | what happens past it |
/// |---------|---------|----------------------|
/// | [`header_read_timeout`](Serving::header_read_timeout) | 10 s | a connection that has not sent a whole request head in time (slow headers, or idle between requests) is closed (hyper) |
/// | [`request_timeout`](Serving::request_timeout) | 30 s | `408` (JSON): the handler, reading the body included, took too long (tower-http) |
/// | [`max_body_bytes`](Serving::max_body_bytes) | 16 KiB | `413` (JSON), decided from `Content-Length` before the body is read (tower-http) |
/// | [`max_uri_bytes`](Serving::max_uri_bytes) | 8 KiB | `414` (JSON) |
/// | [`max_header_bytes`](Serving::max_header_bytes) | 16 KiB | `431` (JSON) |
/// | [`max_connections`](Serving::max_connections) | 512 | no more connections are accepted until one closes: they wait in the listen backlog |
///
/// Requests whose head hyper cannot parse, or whose head is over hyper's buffer (about 400
/// KiB), are answered by hyper itself (`400`, `431`), with an empty body. Server-Sent Events
/// streams are not cut by the request timeout: it bounds the time to the response's head.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use background_worker::console::Serving;
///
/// let serving = Serving::default()
///     .max_connections(900)
///     .request_timeout(Duration::from_secs(20));
/// assert_eq!(serving.max_connections_value(), 900);
/// ```
#[derive(Debug, Clone)]
pub struct Serving {
    header_read_timeout: Duration,
    request_timeout: Duration,
    max_body_bytes: usize,
    max_uri_bytes: usize,
    max_header_bytes: usize,
    max_connections: usize,
}

impl Default for Serving {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 512,
        }
    }
}

impl Serving {
    /// How long a client has to send a whole request head, from the moment the connection is
    /// open or idle (between requests on a kept-alive connection).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use background_worker::console::Serving;
    /// let serving = Serving::default().header_read_timeout(Duration::from_secs(5));
    /// # let _ = serving;
    /// ```
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long one request may take until its response head, reading the body included.
    /// Give it more than the longest handler (for example a `DELETE` that waits for a cancel).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use background_worker::console::Serving;
    /// let serving = Serving::default().request_timeout(Duration::from_secs(60));
    /// # let _ = serving;
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest request body accepted, in bytes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use background_worker::console::Serving;
    /// let serving = Serving::default().max_body_bytes(64 * 1024);
    /// # let _ = serving;
    /// ```
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The longest request target (path and query) accepted, in bytes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use background_worker::console::Serving;
    /// let serving = Serving::default().max_uri_bytes(2 * 1024);
    /// # let _ = serving;
    /// ```
    #[must_use]
    pub fn max_uri_bytes(mut self, bytes: usize) -> Self {
        self.max_uri_bytes = bytes;
        self
    }

    /// The most header bytes (names and values) accepted.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use background_worker::console::Serving;
    /// let serving = Serving::default().max_header_bytes(32 * 1024);
    /// # let _ = serving;
    /// ```
    #[must_use]
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// The most connections open at once. Keep it below the process's file limit (`ulimit -n`)
    /// minus what the rest of the process needs, so that accepting never fails for lack of
    /// file descriptors.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use background_worker::console::Serving;
    /// let serving = Serving::default().max_connections(900);
    /// # let _ = serving;
    /// ```
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The cap on open connections.
    ///
    /// ```
    /// assert_eq!(background_worker::console::Serving::default().max_connections_value(), 512);
    /// ```
    #[must_use]
    pub fn max_connections_value(&self) -> usize {
        self.max_connections
    }

    /// `app` with the request-level settings as layers: the request timeout, the body limit,
    /// the URI and header limits, and JSON bodies for every error answer that has no body (the
    /// layers' own `408` and `413` among them). [`serve`] applies it; use it alone to serve
    /// with another loop.
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use axum::routing::post;
    /// use axum::Router;
    /// use background_worker::console::Serving;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = Serving::default().layer(Router::new().route("/jobs", post(|| async { "ok" })));
    /// let request = Request::post("/jobs")
    ///     .header("content-length", "1000000")
    ///     .body(Body::empty())
    ///     .unwrap();
    /// let response = app.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// # }
    /// ```
    pub fn layer(&self, app: Router) -> Router {
        let limits = Limits {
            uri: self.max_uri_bytes,
            headers: self.max_header_bytes,
        };
        app.layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            self.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(self.max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let limits = limits;
            async move { limits.check(request, next).await }
        }))
        .layer(middleware::map_response(json_errors))
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    uri: usize,
    headers: usize,
}

impl Limits {
    async fn check(self, request: Request, next: Next) -> Response {
        let uri = request
            .uri()
            .path_and_query()
            .map_or(0, |target| target.as_str().len());
        if uri > self.uri {
            return ApiError::new(
                StatusCode::URI_TOO_LONG,
                format!("the request target is longer than {} bytes", self.uri),
            )
            .into_response();
        }
        let headers: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if headers > self.headers {
            return ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("the request headers are larger than {} bytes", self.headers),
            )
            .into_response();
        }
        next.run(request).await
    }
}

/// Gives an error answer that is not JSON (from a layer such as tower-http's `413` in plain
/// text, or a handler that set only a status) the JSON body `{"error": "<reason>"}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let error = status.is_client_error() || status.is_server_error();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !error || json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = serde_json::json!({ "error": reason }).to_string();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Serves `app` on `listener` with `serving`'s settings until `shutdown` completes, then stops
/// accepting, lets the open connections finish their requests and returns once they are all
/// closed. A Server-Sent Events stream never finishes on its own: bound the wait (with
/// `tokio::time::timeout`) and exit.
///
/// Each connection is HTTP/1.1 through hyper, with its header-read timeout and keep-alive;
/// the request-level settings come from [`Serving::layer`]. When `max_connections` are open,
/// the loop waits for one to close before it accepts the next, so idle clients cannot take
/// every file descriptor: hyper closes them after the header-read timeout, and the waiting
/// ones are accepted then.
///
/// # Examples
///
/// ```no_run
/// use axum::Router;
/// use background_worker::console::{serve, Console, Serving};
/// use background_worker::Worker;
///
/// # async fn run() -> std::io::Result<()> {
/// let worker = Worker::new();
/// let app: Router = Console::new(worker.clone()).router();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// serve(listener, app, Serving::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
///
/// # Errors
///
/// None so far: accept errors (such as running out of file descriptors) are logged and retried
/// after a pause. The `io::Result` leaves room for errors a later version may report.
///
/// # Cancel safety
///
/// Dropping the future stops accepting; connections already open keep being served by their
/// own tasks until they close.
pub async fn serve<F>(listener: TcpListener, app: Router, serving: Serving, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let app = serving.layer(app);
    let slots = Arc::new(Semaphore::new(serving.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(serving.header_read_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed, pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.oneshot(request.map(Body::new)).await.into_response()) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
