//! `GET /events`: the worker's status changes as Server-Sent Events.
//!
//! One fan-out task per console subscribes to the worker ([`Worker::subscribe`]), turns each
//! change into its SSE frame once (the job looked up and serialized once, not once per client)
//! and hands the frame to every client through a broadcast channel of its own. The worker never
//! waits for it, and it never waits for a client: a client that falls more than
//! [`CLIENT_BUFFER`] frames behind (a slow reader, a full TCP window) skips what it missed and
//! gets a `lagged` event saying how many; the fan-out task, if it falls more than the worker's
//! 1 024 events behind, sends `lagged` to everyone. Each client writes what arrived within
//! [`COALESCE`] of a first frame at once, so a busy worker costs each client at most 20 writes
//! a second. The task runs while at least one client is
//! connected and stops at the first change after the last one left, so it keeps no worker
//! alive.
//!
//! With a mirror (feature `redis`), a second task per fan-out feeds the other replicas' changes
//! from the mirror's `{ns}:events` subscription, each job read once from Redis (see `fan_in`);
//! this replica's own come only from its worker, so none is sent twice.
//!
//! [`Worker::subscribe`]: crate::Worker::subscribe

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::json::JobView;
use super::shared::Shared;
use crate::status::TaskStatus;

/// How often an idle stream sends a comment line, so that proxies keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Frames a client may fall behind before it skips.
pub(crate) const CLIENT_BUFFER: usize = 4_096;
/// After a frame arrives, a client waits this long for more and sends them together: at most
/// 20 writes a second per client however busy the worker is, for 50 ms of added latency.
pub(crate) const COALESCE: Duration = Duration::from_millis(50);

/// One event, ready to send: its name and its `data:`.
#[derive(Debug)]
pub(crate) struct Frame {
    name: &'static str,
    data: String,
}

/// The fan-out of one console: the sender its task feeds, while the task runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fanout {
    sender: Arc<Mutex<Option<broadcast::Sender<Arc<Frame>>>>>,
}

impl Fanout {
    /// A receiver of the frames, starting the fan-out task if none runs.
    fn subscribe(&self, shared: &Shared) -> broadcast::Receiver<Arc<Frame>> {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = sender.as_ref() {
            return running.subscribe();
        }
        let (frames, receiver) = broadcast::channel(CLIENT_BUFFER);
        *sender = Some(frames.clone());
        let changes = shared.worker.subscribe();
        #[cfg(feature = "redis")]
        if let Some(mirror) = &shared.mirror {
            tokio::spawn(fan_in(mirror.clone(), mirror.cluster_events(), frames.clone()));
        }
        tokio::spawn(fan_out(shared.clone(), changes, frames, self.clone()));
        receiver
    }

    /// Forgets the task's sender if nobody listens any more; `true` if it did.
    fn stop_if_unheard(&self, frames: &broadcast::Sender<Arc<Frame>>) -> bool {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if frames.receiver_count() > 0 {
            return false;
        }
        *sender = None;
        true
    }
}

async fn fan_out(
    shared: Shared,
    mut changes: broadcast::Receiver<crate::info::TaskEvent>,
    frames: broadcast::Sender<Arc<Frame>>,
    fanout: Fanout,
) {
    loop {
        let frame = match changes.recv().await {
            Ok(change) => frame(&shared, change.id, &change.status),
            Err(RecvError::Lagged(skipped)) => Frame {
                name: "lagged",
                data: format!("{{\"skipped\":{skipped}}}"),
            },
            Err(RecvError::Closed) => break,
        };
        if frames.send(Arc::new(frame)).is_err() && fanout.stop_if_unheard(&frames) {
            break;
        }
    }
}

/// Feeds the other replicas' status changes (from the mirror's `{ns}:events` subscription) to
/// the fan-out's clients, each job read once from Redis; this replica's own changes come from
/// its worker. Ends when no client listens any more (at the next event) or the mirror stops.
#[cfg(feature = "redis")]
async fn fan_in(
    mirror: crate::redis::RedisMirror,
    mut events: broadcast::Receiver<crate::redis::ClusterEvent>,
    frames: broadcast::Sender<Arc<Frame>>,
) {
    loop {
        let frame = match events.recv().await {
            Ok(event) if event.replica == mirror.replica() => continue,
            Ok(event) => match tokio::time::timeout(Duration::from_secs(3), mirror.job(&event.id)).await {
                Ok(Ok(Some(job))) => {
                    let view = JobView::from(job);
                    Frame {
                        name: view.status,
                        data: serde_json::to_string(&view).unwrap_or_default(),
                    }
                }
                _ => continue, // gone or unreadable: the listing stays the source of truth
            },
            Err(RecvError::Lagged(skipped)) => Frame {
                name: "lagged",
                data: format!("{{\"skipped\":{skipped}}}"),
            },
            Err(RecvError::Closed) => break,
        };
        if frames.send(Arc::new(frame)).is_err() {
            break;
        }
    }
}

/// The frame of one change: the job as it is now, with the status of the change.
fn frame(shared: &Shared, id: String, status: &TaskStatus) -> Frame {
    let mut view = match shared.worker.task_info(&id) {
        Some(info) => shared.view(info),
        None => JobView::bare(id, status),
    };
    let (name, message) = match status {
        TaskStatus::Failed(message) => ("failed", Some(message.clone())),
        other => (other.name(), None),
    };
    view.status = name;
    view.message = message;
    Frame {
        name,
        data: serde_json::to_string(&view).unwrap_or_default(),
    }
}

/// The stream of one client: each batch is the frames that arrived within [`COALESCE`] of the
/// first one, written together.
pub(crate) fn stream(fanout: &Fanout, shared: Shared) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = fanout.subscribe(&shared);
    let batches = stream::unfold(receiver, |mut receiver| async move {
        let first = receiver.recv().await;
        if matches!(first, Err(RecvError::Closed)) {
            return None;
        }
        tokio::time::sleep(COALESCE).await;
        let mut batch = vec![event(first)];
        loop {
            match receiver.try_recv() {
                Ok(frame) => batch.push(event(Ok(frame))),
                Err(TryRecvError::Lagged(skipped)) => batch.push(event(Err(RecvError::Lagged(skipped)))),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Some((stream::iter(batch.into_iter().flatten().map(Ok)), receiver))
    });
    Sse::new(batches.flatten()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

fn event(received: Result<Arc<Frame>, RecvError>) -> Option<Event> {
    match received {
        Ok(frame) => Some(Event::default().event(frame.name).data(frame.data.as_str())),
        Err(RecvError::Lagged(skipped)) => Some(
            Event::default()
                .event("lagged")
                .data(format!("{{\"skipped\":{skipped}}}")),
        ),
        Err(RecvError::Closed) => None,
    }
}
