//! The writer: the only task that writes task states to Redis. It drains the queue in batches,
//! merges each submission's updates, and sends them as one pipeline of fenced `WRITE` scripts.
//! A batch that fails is retried (with a backoff capped at one second) until Redis takes it,
//! so per task the states arrive in order and none is skipped; the fence makes a replay
//! harmless. A scheduled re-sync writes a snapshot of the whole registry the same way.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};

use crate::redis::job::ClusterStatus;
use crate::redis::keys::digest;
use crate::redis::mirror::Inner;
use crate::redis::query::is_connection;
use crate::redis::update::{coalesce, Update};
use crate::worker::Worker;

/// Updates per pipeline.
const BATCH: usize = 512;
/// The longest pause between two attempts at a batch.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Asks the writer to flush and finish.
pub(crate) fn begin_close(inner: &Inner) {
    inner.closing.store(true, Ordering::Release);
    inner.link.wake.notify_one();
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    worker: Worker,
    conn: ConnectionManager,
    mut queue: mpsc::Receiver<Update>,
    flushed: watch::Sender<bool>,
) {
    let link = Arc::clone(&inner.link);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(update) => batch.push(update),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if link.resync.swap(false, Ordering::AcqRel) {
                if !resync(&inner, &worker, &conn).await {
                    return;
                }
                continue;
            }
            if inner.closing.load(Ordering::Acquire) {
                flushed.send_replace(true);
                return;
            }
            tokio::select! {
                update = queue.recv() => match update {
                    Some(update) => batch.push(update),
                    None => return,
                },
                () = link.wake.notified() => {}
                () = inner.stop.cancelled() => return,
            }
            continue;
        }
        let updates = coalesce(std::mem::take(&mut batch));
        if !write(&inner, &worker, &conn, updates).await {
            return;
        }
    }
}

/// Writes a snapshot of every task in the registry. `false` if the mirror stopped meanwhile.
async fn resync(inner: &Inner, worker: &Worker, conn: &ConnectionManager) -> bool {
    let snapshot = worker.tasks();
    tracing::info!(tasks = snapshot.len(), "redis mirror: re-syncing from the registry");
    let mut updates: Vec<Update> = snapshot.into_iter().map(|info| Update::from_info(info, true)).collect();
    while !updates.is_empty() {
        let rest = updates.split_off(updates.len().min(BATCH));
        if !write(inner, worker, conn, updates).await {
            return false;
        }
        updates = rest;
    }
    inner.link.health.resyncs.fetch_add(1, Ordering::Relaxed);
    true
}

/// Writes `updates` in one pipeline, retrying until Redis takes them. `false` if the mirror
/// stopped first.
async fn write(inner: &Inner, worker: &Worker, conn: &ConnectionManager, mut updates: Vec<Update>) -> bool {
    // A terminal transition carries no progress: take the final one from the registry.
    for update in &mut updates {
        if update.status.stage() == 3 && update.progress.is_none() {
            update.progress = worker
                .task_info(&update.id)
                .filter(|info| info.generation == update.generation)
                .and_then(|info| info.progress);
        }
    }
    let pipe = pipeline(inner, &updates);
    let health = &inner.link.health;
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut conn = conn.clone();
        match pipe.query_async::<Vec<i64>>(&mut conn).await {
            Ok(results) => {
                health.ok();
                let written = results.iter().filter(|&&result| result == 1).count() as u64;
                let fenced = results.len() as u64 - written;
                health.written.fetch_add(written, Ordering::Relaxed);
                health.fenced.fetch_add(fenced, Ordering::Relaxed);
                return true;
            }
            Err(error) if is_connection(&error) => health.error("write task states", &error),
            Err(error) => health.error("write task states (redis refused the batch)", &error),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.stop.cancelled() => return false,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One `EVALSHA` of the `WRITE` script per update, after a `SCRIPT LOAD` of it (a few KiB per
/// batch, and no `NOSCRIPT` after Redis restarted).
fn pipeline(inner: &Inner, updates: &[Update]) -> redis::Pipeline {
    let keys = &inner.keys;
    let settings = &inner.settings;
    let index = keys.index();
    let expiry = keys.expiry();
    let owned = keys.owned(&inner.replica_hash, &inner.incarnation);
    let retention_ms = u64::try_from(settings.retention.as_millis()).unwrap_or(u64::MAX);
    let sha = inner.scripts.write.get_hash();
    let optional = |value: Option<u64>| value.map_or_else(String::new, |value| value.to_string());
    let mut pipe = redis::pipe();
    pipe.load_script(&inner.scripts.write).ignore();
    for update in updates {
        let member = digest(&update.id);
        let message = match &update.status {
            ClusterStatus::Failed(message) => message.as_str(),
            _ => "",
        };
        let progress = update.progress.as_ref();
        pipe.cmd("EVALSHA")
            .arg(sha)
            .arg(4)
            .arg(keys.job(&member))
            .arg(&index)
            .arg(&expiry)
            .arg(&owned)
            .arg(&*update.id)
            .arg(&member)
            .arg(&settings.replica)
            .arg(&inner.incarnation)
            .arg(update.generation)
            .arg(update.submitted_ms)
            .arg(update.status.stage())
            .arg(update.status.name())
            .arg(message)
            .arg(optional(update.started_ms))
            .arg(optional(update.finished_ms))
            .arg(retention_ms)
            .arg(if progress.is_some() { "1" } else { "0" })
            .arg(progress.and_then(|p| p.fraction).map_or_else(String::new, |f| f.to_string()))
            .arg(optional(progress.and_then(|p| p.done)))
            .arg(optional(progress.and_then(|p| p.total)))
            .arg(progress.and_then(|p| p.message.as_deref()).unwrap_or(""))
            .arg(if progress.is_some_and(|p| p.message.is_some()) { "1" } else { "0" })
            .arg(if update.reclaim { "1" } else { "0" });
    }
    pipe
}
