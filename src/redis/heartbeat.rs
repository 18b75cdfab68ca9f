//! The heartbeat: holds the replica's lease (renewed every third of it, judged on Redis's
//! clock), reads the cancel requests stored for this replica (so a lost pub/sub message still
//! gets through), and samples the progress of running tasks at a bounded rate.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::progress::Progress;
use crate::redis::error::ClusterError;
use crate::redis::mirror::Inner;
use crate::redis::query::{parse_cancel, retry};
use crate::redis::update::Update;
use crate::status::TaskStatus;
use crate::worker::Worker;

pub(crate) async fn run(inner: Arc<Inner>, worker: Worker, conn: ConnectionManager) {
    let settings = &inner.settings;
    let renew_every = settings.lease / 3;
    let mut next_renewal = Instant::now();
    let mut next_sample = Instant::now() + settings.progress_interval;
    let mut sampled: HashMap<(Arc<str>, u64), Progress> = HashMap::new();
    loop {
        let now = Instant::now();
        if now >= next_renewal {
            next_renewal = now + renew_every;
            if renew(&inner, &conn).await {
                read_cancels(&inner, &worker, &conn).await;
            }
        }
        if now >= next_sample {
            next_sample = now + settings.progress_interval;
            sample_progress(&inner, &worker, &mut sampled);
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_renewal.min(next_sample)) => {}
            () = inner.stop.cancelled() => return,
        }
    }
}

/// Renews or takes the lease; returns whether it is held. A lease taken afresh after it was
/// held once (it expired, or Redis restarted and lost it) schedules a re-sync: what Redis knew
/// of this replica's jobs may be gone or marked lost.
///
/// The writer calls it too, before it writes while the lease is not held: a record must not
/// reach Redis before its replica's lease, or readers would report it lost.
pub(crate) async fn renew(inner: &Inner, conn: &ConnectionManager) -> bool {
    let ever_held = inner.link.health.ever_held.load(Ordering::Acquire);
    let health = &inner.link.health;
    let keys = &inner.keys;
    let lease_key = keys.lease(&inner.replica_hash);
    let replicas = keys.replicas();
    let field = inner.replicas_field();
    let lease_ms = u64::try_from(inner.settings.lease.as_millis()).unwrap_or(u64::MAX);
    let result: redis::RedisResult<i64> = retry(health, "renew the lease", || {
        let mut conn = conn.clone();
        let mut invocation = inner.scripts.lease.key(&lease_key);
        invocation
            .key(&replicas)
            .arg(&inner.incarnation)
            .arg(lease_ms)
            .arg(&field)
            .arg(&inner.settings.replica);
        async move { invocation.invoke_async(&mut conn).await }
    })
    .await;
    let held = match result {
        Ok(1) => true,
        Ok(0) => {
            if ever_held {
                tracing::warn!(replica = %inner.settings.replica, "redis mirror: the lease had expired or was lost; re-syncing");
                inner.link.request_resync();
            }
            true
        }
        Ok(_) => {
            health.error(
                "take the lease",
                &format!(
                    "replica name {:?} is held by another process",
                    inner.settings.replica
                ),
            );
            false
        }
        Err(_) => false,
    };
    health.lease_held.store(held, Ordering::Release);
    if held {
        health.ever_held.store(true, Ordering::Release);
    }
    held
}

/// Applies the cancel requests stored for this replica run, then removes them.
async fn read_cancels(inner: &Inner, worker: &Worker, conn: &ConnectionManager) {
    let key = inner.keys.cancels(&inner.replica_hash, &inner.incarnation);
    let requests: redis::RedisResult<HashMap<String, String>> =
        retry(&inner.link.health, "read cancel requests", || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await }
        })
        .await;
    let Ok(requests) = requests else { return };
    if requests.is_empty() {
        return;
    }
    for payload in requests.values() {
        apply_cancel(worker, payload);
    }
    let fields: Vec<&String> = requests.keys().collect();
    let _: redis::RedisResult<()> = retry(&inner.link.health, "clear cancel requests", || {
        let mut conn = conn.clone();
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&key).arg(&fields);
        async move { cmd.query_async(&mut conn).await }
    })
    .await;
}

/// Cancels the local task named in a `<generation>:<id>` request, if that submission is still
/// running here. The cancel (which may wait for the cancel timeout) runs in its own task.
pub(crate) fn apply_cancel(worker: &Worker, payload: &str) {
    let Some((generation, id)) = parse_cancel(payload) else {
        tracing::warn!(payload, "redis mirror: ignoring a malformed cancel request");
        return;
    };
    let Some(info) = worker.task_info(id) else { return };
    if info.generation != generation || info.status.is_terminal() {
        return;
    }
    tracing::info!(task_id = %id, "redis mirror: cancel requested by another replica");
    let worker = worker.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let _ = worker.cancel(&id).await;
    });
}

/// Queues the progress of running tasks that changed since the last sample.
fn sample_progress(inner: &Inner, worker: &Worker, sampled: &mut HashMap<(Arc<str>, u64), Progress>) {
    let running = worker.tasks_where(|status| *status == TaskStatus::Running);
    let mut seen = HashMap::with_capacity(running.len());
    for info in running {
        let Some(progress) = info.progress.clone() else {
            continue;
        };
        let key = (Arc::<str>::from(info.id.as_str()), info.generation);
        if sampled.get(&key) != Some(&progress) {
            inner.link.send(Update::from_info(info, false));
        }
        seen.insert(key, progress);
    }
    *sampled = seen;
}

/// Gives the lease back (after the flush): the replica left cleanly.
pub(crate) async fn release(inner: &Inner, conn: ConnectionManager) -> Result<(), ClusterError> {
    let keys = &inner.keys;
    let lease_key = keys.lease(&inner.replica_hash);
    let replicas = keys.replicas();
    let owned = keys.owned(&inner.replica_hash, &inner.incarnation);
    let cancels = keys.cancels(&inner.replica_hash, &inner.incarnation);
    let field = inner.replicas_field();
    retry(&inner.link.health, "release the lease", || {
        let mut conn = conn.clone();
        let mut invocation = inner.scripts.release.key(&lease_key);
        invocation
            .key(&replicas)
            .key(&owned)
            .key(&cancels)
            .arg(&inner.incarnation)
            .arg(&field);
        async move { invocation.invoke_async::<i64>(&mut conn).await }
    })
    .await?;
    Ok(())
}
