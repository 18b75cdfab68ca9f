//! The cancel listener: a RESP3 connection subscribed to this replica run's cancel channel.
//! The connection manager gets a push sender and automatic resubscription, so a reconnect
//! resubscribes by itself; a message lost meanwhile is still read from the stored request at
//! the next heartbeat.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ProtocolVersion, PushKind, Value};
use tokio::sync::mpsc;

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
    let channel = inner.keys.cancels(&inner.replica_hash, &inner.incarnation);
    // Until the first subscription succeeds; after that the manager resubscribes on reconnect.
    loop {
        match conn.subscribe(&channel).await {
            Ok(()) => break,
            Err(error) => inner.link.health.error("subscribe to cancels", &error),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = inner.stop.cancelled() => return,
        }
    }
    loop {
        let push = tokio::select! {
            push = received.recv() => push,
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
