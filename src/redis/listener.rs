//! The cancel listener (and the cluster's events, `{ns}:events`): a RESP3 connection (to the single node, or to the cluster: see
//! `conn.rs`) subscribed to the current run's cancel channel (a new run's, once one begins).
//! The connection re-subscribes by itself after a reconnect, and the subscription is affirmed
//! every heartbeat (on a cluster, that is what finds a failed-over node); a message lost
//! meanwhile is still read from the stored request at the next heartbeat.

use std::sync::Arc;
use std::time::Duration;

use redis::{PushKind, Value};
use tokio::sync::mpsc;

use crate::redis::call::bounded;
use crate::redis::cancels::apply_cancel;
use crate::redis::conn::Subscriber;
use crate::redis::shared::{ClusterEvent, Shared};
use crate::worker::Worker;

/// How long to wait before trying again to open the connection or to subscribe.
const RETRY_AFTER: Duration = Duration::from_millis(500);

pub(crate) async fn run(inner: Arc<Shared>, worker: Worker) {
    let (pushes, mut received) = mpsc::unbounded_channel();
    // A cluster connection is made here, which needs the cluster: until then, try again.
    let mut conn = loop {
        let opened = Subscriber::open(
            &inner.client,
            inner.settings.cluster,
            inner.manager_config(),
            inner.link.health.call_timeout,
            pushes.clone(),
        );
        match bounded(inner.link.health.call_timeout, opened).await {
            Ok(conn) => break conn,
            Err(error) => inner.link.health.error("open the cancel listener", &error),
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_AFTER) => {}
            () = inner.stop.cancelled() => return,
        }
    };
    drop(pushes);
    let mut runs = inner.run.subscribe();
    let mut subscribed: Option<String> = None;
    // Every replica's status changes (write.lua publishes them), for the console's /events:
    // subscribed only while a receiver exists, so a replica nobody watches reads none of them.
    let events = inner.keys.events();
    let mut events_on = false;
    // The subscription is affirmed again every heartbeat: on a cluster this is what makes the
    // client notice a failover of the node it subscribed on (an idle connection sends nothing,
    // so its slot map would never be refreshed and nothing re-subscribed).
    let mut affirm = tokio::time::interval(inner.settings.heartbeat_every());
    affirm.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    affirm.reset();
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
                Ok(()) => subscribed = Some(channel.clone()),
                Err(error) => {
                    inner.link.health.error("subscribe to cancels", &error);
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                        () = inner.stop.cancelled() => return,
                    }
                    continue;
                }
            }
        }
        let wanted = inner.events.receiver_count() > 0;
        if wanted != events_on {
            let result = if wanted {
                bounded(inner.link.health.call_timeout, conn.subscribe(&events)).await
            } else {
                bounded(inner.link.health.call_timeout, conn.unsubscribe(&events)).await
            };
            match result {
                Ok(()) => events_on = wanted,
                Err(error) => inner.link.health.error("subscribe to events", &error),
            }
        }
        let push = tokio::select! {
            push = received.recv() => push,
            _ = runs.changed() => continue,
            () = inner.events_wanted.notified() => continue,
            _ = affirm.tick() => {
                if let Err(error) = bounded(inner.link.health.call_timeout, conn.subscribe(&channel)).await {
                    inner.link.health.error("subscribe to cancels", &error);
                }
                if events_on {
                    if let Err(error) = bounded(inner.link.health.call_timeout, conn.subscribe(&events)).await {
                        inner.link.health.error("subscribe to events", &error);
                    }
                }
                continue;
            }
            () = inner.stop.cancelled() => return,
        };
        let Some(push) = push else { return };
        if push.kind != PushKind::Message {
            continue;
        }
        if let (Some(Value::BulkString(from)), Some(Value::BulkString(payload))) =
            (push.data.first(), push.data.get(1))
        {
            if from.as_slice() == events.as_bytes() {
                if let Some(event) = ClusterEvent::parse(payload) {
                    // Nobody listening any more is fine: the next turn unsubscribes.
                    let _ = inner.events.send(event);
                }
                continue;
            }
        }
        if let Some(Value::BulkString(payload)) = push.data.get(1) {
            if let Ok(payload) = std::str::from_utf8(payload) {
                apply_cancel(&worker, payload);
            }
        }
    }
}
