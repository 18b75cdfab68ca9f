//! The dashboard: one HTML page, a stylesheet and a script, embedded in the crate and served
//! with a Content-Security-Policy that allows no inline script or style.

use axum::body::Bytes;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("assets/dashboard.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// The policy sent with the page: its own script, style and API only; nothing inline, no
/// frames, no plugins, no forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes, with the page rendered once for its mode.
#[derive(Debug, Clone)]
pub(crate) struct Dashboard {
    page: Bytes,
}

impl Dashboard {
    pub(crate) fn new(read_only: bool) -> Self {
        let mode = if read_only { "read-only" } else { "read-write" };
        Self {
            page: Bytes::from(PAGE.replace("{{MODE}}", mode)),
        }
    }

    pub(crate) fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let page = self.page;
        Router::new()
            .route(
                "/dashboard",
                get(move || {
                    let page = page.clone();
                    async move { answer("text/html; charset=utf-8", page) }
                }),
            )
            .route(
                "/dashboard.js",
                get(|| async { answer("text/javascript; charset=utf-8", SCRIPT) }),
            )
            .route(
                "/dashboard.css",
                get(|| async { answer("text/css; charset=utf-8", STYLE) }),
            )
    }
}

fn answer(content_type: &'static str, body: impl Into<Bytes>) -> impl IntoResponse {
    let headers: [(HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body.into())
}
