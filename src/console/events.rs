//! `GET /events`: the worker's status changes as Server-Sent Events.
//!
//! Each client has its own receiver of [`Worker::subscribe`](crate::Worker::subscribe): the
//! worker never waits for a client. A client that falls more than the channel's 1 024 events
//! behind (a slow reader, a full TCP window) skips what it missed and gets a `lagged` event
//! saying how many; it never slows the worker or the other clients.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::json::JobView;
use super::Console;

/// How often an idle stream sends a comment line, so that proxies keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The stream of one client.
pub(crate) fn stream(console: Console) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = console.worker.subscribe();
    let events = stream::unfold((console, receiver), |(console, mut receiver)| async move {
        let event = match receiver.recv().await {
            Ok(change) => {
                let view = match console.worker.task_info(&change.id) {
                    Some(info) => console.view(info),
                    None => JobView::bare(change.id, &change.status),
                };
                // The status at the time of the change, even if the job has moved on since.
                let mut view = view;
                let (status, message) = match &change.status {
                    crate::TaskStatus::Failed(message) => ("failed", Some(message.clone())),
                    other => (other.name(), None),
                };
                view.status = status;
                view.message = message;
                let data = serde_json::to_string(&view).unwrap_or_default();
                Event::default().event(status).data(data)
            }
            Err(RecvError::Lagged(skipped)) => Event::default()
                .event("lagged")
                .data(format!("{{\"skipped\":{skipped}}}")),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (console, receiver)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
