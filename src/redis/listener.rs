//! The cancel listener: a RESP3 connection subscribed to the current run's cancel channel (a
//! new run's, once one begins).
//! The connection manager gets a push sender and automatic resubscription, so a reconnect
//! resubscribes by itself; a message lost meanwhile is still read from the stored request at
//! the next heartbeat.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ProtocolVersion, PushKind, Value};
use tokio::sync::mpsc;

use crate::redis::call::bounded;
use crate::redis::cancels::apply_cancel;
use crate::redis::shared::Shared;
use crate::worker::Worker;

pub(crate) async fn run(inner: Arc<Shared>, worker: Worker) {
    let (pushes, mut received) = mpsc::unbounded_channel();
    let info = inner.client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let client = match redis::Client::open(info.set_redis_settings(settings)) {
        Ok(client) => client,
        Err(error) => return inner.link.health.error("open the cancel listener", &error),
    };
    let config = inner
        .manager_config()
        .set_push_sender(pushes)
        .set_automatic_resubscription();
    let mut conn = match ConnectionManager::new_lazy_with_config(client, config) {
        Ok(conn) => conn,
        Err(error) => return inner.link.health.error("open the cancel listener", &error),
    };
    let mut runs = inner.run.subscribe();
    let mut subscribed: Option<String> = None;
    loop {
        // The current run's channel (again after a new run began); until the subscription
        // succeeds. After that the manager resubscribes on reconnect.
        let channel = inner
            .keys
            .cancels(&inner.replica_hash, &runs.borrow_and_update().incarnation);
        if subscribed.as_ref() != Some(&channel) {
            if let Some(old) = subscribed.take() {
                let _ = bounded(inner.link.health.call_timeout, conn.unsubscribe(&old)).await;
            }
            match bounded(inner.link.health.call_timeout, conn.subscribe(&channel)).await {
                Ok(()) => subscribed = Some(channel),
                Err(error) => {
                    inner.link.health.error("subscribe to cancels", &error);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = inner.stop.cancelled() => return,
                    }
                    continue;
                }
            }
        }
        let push = tokio::select! {
            push = received.recv() => push,
            _ = runs.changed() => continue,
            () = inner.stop.cancelled() => return,
        };
        let Some(push) = push else { return };
        if push.kind != PushKind::Message {
            continue;
        }
        if let Some(Value::BulkString(payload)) = push.data.get(1) {
            if let Ok(payload) = std::str::from_utf8(payload) {
                apply_cancel(&worker, payload);
            }
        }
    }
}
