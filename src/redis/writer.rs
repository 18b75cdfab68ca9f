//! The writer: the only task that writes task states to Redis. It drains the queue in batches,
//! merges each submission's updates, and sends them as one pipeline of fenced `WRITE` scripts.
//! A batch that fails is retried (with a backoff capped at one second) until Redis takes it,
//! so per task the states arrive in order and none is skipped; the fence makes a replay
//! harmless. A scheduled re-sync writes a snapshot of the whole registry the same way.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use crate::redis::conn::Conn;
use tokio::sync::watch;

use crate::redis::call::{bounded, is_connection};
use crate::redis::job::ClusterStatus;
use crate::redis::keys::digest;
use crate::redis::lease::renew;
use crate::redis::runs::died;
use crate::redis::shared::{Run, Shared};
use crate::redis::update::Update;
use crate::status::TaskStatus;
use crate::worker::Worker;

/// Updates per pipeline.
const BATCH: usize = 512;
/// Updates per call of the `WRITE` script (its keys and arguments grow with it).
const PER_SCRIPT: usize = 64;
/// The longest pause between two attempts at a batch.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Asks the writer to flush and finish.
pub(crate) fn begin_close(inner: &Shared) {
    inner.closing.store(true, Ordering::Release);
    inner.link.wake.notify_one();
}

pub(crate) async fn run(inner: Arc<Shared>, worker: Worker, conn: Conn, flushed: watch::Sender<bool>) {
    let link = Arc::clone(&inner.link);
    loop {
        if link.resync.load(Ordering::Acquire) {
            // Re-sync at once rather than after the backlog: everything queued so far is older
            // than the snapshot about to be taken, so it is only kept where the snapshot cannot
            // stand for it (the end of a task already removed from the registry).
            let queued = link.take();
            link.resyncing.store(true, Ordering::Release);
            link.resync.store(false, Ordering::Release);
            let done = resync(&inner, &worker, &conn, queued).await;
            link.resyncing.store(false, Ordering::Release);
            if !done {
                return;
            }
            continue;
        }
        let updates = link.take();
        if updates.is_empty() {
            if inner.closing.load(Ordering::Acquire) {
                flushed.send_replace(true);
                return;
            }
            // The observer wakes this on the first update into an empty queue (a permit kept
            // if it comes before this waits), a re-sync and the close too.
            tokio::select! {
                () = link.wake.notified() => {}
                () = inner.stop.cancelled() => return,
            }
            continue;
        }
        if !write_all(&inner, &worker, &conn, updates).await {
            return;
        }
    }
}

/// Writes `updates` a pipeline of [`BATCH`] at a time (taken from the front without moving the
/// rest). `false` if the mirror stopped first.
async fn write_all(inner: &Shared, worker: &Worker, conn: &Conn, updates: Vec<Update>) -> bool {
    let mut updates = updates.into_iter();
    loop {
        let batch: Vec<Update> = updates.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            return true;
        }
        if !write(inner, worker, conn, batch).await {
            return false;
        }
    }
}

/// Writes a snapshot of every task in the registry (with the ends, among the `queued` updates,
/// of tasks no longer in it), then reconciles: a record this run owns
/// that is unfinished in Redis but whose task is not in the snapshot ended while its
/// transitions were dropped and was removed before the snapshot; its end is unknown, so it is
/// marked lost rather than left pending forever. (Nothing else is written meanwhile: the
/// writer is the only one, so every such record was written before the snapshot was taken.)
/// `false` if the mirror stopped meanwhile.
async fn resync(inner: &Shared, worker: &Worker, conn: &Conn, queued: Vec<Update>) -> bool {
    let snapshot = worker.tasks();
    tracing::info!(
        tasks = snapshot.len(),
        "redis mirror: re-syncing from the registry"
    );
    let known: HashSet<String> = snapshot.iter().map(|info| digest(&info.id)).collect();
    let submissions: HashSet<(&str, u64)> = snapshot
        .iter()
        .map(|info| (info.id.as_str(), info.generation))
        .collect();
    let ended: Vec<Update> = queued
        .into_iter()
        .filter(|update| {
            update.status.stage() == 3 && !submissions.contains(&(&*update.id, update.generation))
        })
        .collect();
    drop(submissions);
    let mut updates = ended;
    updates.extend(snapshot.into_iter().map(Update::from_info));
    if !write_all(inner, worker, conn, updates).await {
        return false;
    }
    let mut backoff = Duration::from_millis(50);
    while let Err(error) = reconcile(inner, conn, &known).await {
        inner.link.health.error("reconcile after a re-sync", &error);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.stop.cancelled() => return false,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    inner.link.health.resyncs.fetch_add(1, Ordering::Relaxed);
    true
}

/// Marks lost the unfinished records this run owns whose tasks are not in `known`.
async fn reconcile(inner: &Shared, conn: &Conn, known: &HashSet<String>) -> redis::RedisResult<()> {
    let keys = &inner.keys;
    let run = inner.current_run();
    let owned = keys.owned(&inner.replica_hash, &run.incarnation);
    let mut conn = conn.clone();
    let members: Vec<String> = redis::cmd("SMEMBERS").arg(&owned).query_async(&mut conn).await?;
    let gone: Vec<&String> = members.iter().filter(|member| !known.contains(*member)).collect();
    let retention_ms = u64::try_from(inner.settings.retention.as_millis()).unwrap_or(u64::MAX);
    for chunk in gone.chunks(BATCH) {
        let mut pipe = redis::pipe();
        pipe.load_script(&inner.scripts.mark_lost).ignore();
        for member in chunk {
            pipe.invoke_script(
                inner
                    .scripts
                    .mark_lost
                    .key(keys.job(member))
                    .key(keys.lease(&inner.replica_hash))
                    .key(keys.expiry())
                    .key(&owned)
                    .key(keys.dead(&inner.replica_hash, &run.incarnation))
                    .key(keys.epoch())
                    .arg(&inner.settings.replica)
                    .arg(&run.incarnation)
                    .arg(retention_ms)
                    .arg(*member)
                    .arg("1")
                    .arg(inner.settings.lease_ms()),
            );
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    if !gone.is_empty() {
        tracing::warn!(
            jobs = gone.len(),
            "redis mirror: jobs that ended while their transitions were dropped are marked lost"
        );
    }
    Ok(())
}

/// Writes `updates` in one pipeline, retrying until Redis takes them. `false` if the mirror
/// stopped first. Nothing is written before the current run holds its lease (a record must not
/// reach Redis before its run's lease: the script would find that run dead), and nothing of a
/// dead run's submissions is written at all.
async fn write(inner: &Shared, worker: &Worker, conn: &Conn, mut updates: Vec<Update>) -> bool {
    // Bring each update up to date with the registry: a terminal one takes the final progress
    // (a transition carries none); an unfinished one whose task has finished since becomes
    // that final state (so a record that expired meanwhile is not brought back unfinished);
    // one whose task is gone (removed, or re-submitted) is dropped: its end follows in the
    // queue, or a re-sync covers it.
    updates.retain_mut(|update| {
        let current = worker
            .task_info(&update.id)
            .filter(|info| info.generation == update.generation);
        match current {
            Some(info) if update.status.stage() == 3 => {
                if update.progress.is_none() {
                    update.progress = info.progress;
                }
                true
            }
            Some(info) => {
                if info.status.is_terminal()
                    || (update.status.stage() == 0 && info.status == TaskStatus::Running)
                {
                    *update = Update::from_info(info);
                }
                true
            }
            None => update.status.stage() == 3,
        }
    });
    let health = &inner.link.health;
    let mut backoff = Duration::from_millis(50);
    loop {
        // A dead run's submissions are lost: never written again.
        updates.retain(|update| inner.run_of(update.generation).is_some());
        if updates.is_empty() {
            return true;
        }
        let run = inner.current_run();
        let held = (run.ever_held.load(Ordering::Acquire) && health.lease_fresh())
            || renew(inner, worker, conn).await;
        if held && Arc::ptr_eq(&run, &inner.current_run()) {
            let pipe = pipeline(inner, &run, &updates);
            let mut conn = conn.clone();
            match bounded(
                inner.settings.query_timeout,
                pipe.query_async::<Vec<Value>>(&mut conn),
            )
            .await
            {
                Ok(results) => {
                    // One string of codes per script call (however the client nests them).
                    let results = codes(results);
                    health.ok();
                    let written = results.iter().filter(|&&code| code == b'1').count() as u64;
                    let fenced = results.len() as u64 - written;
                    health.written.fetch_add(written, Ordering::Relaxed);
                    health.fenced.fetch_add(fenced, Ordering::Relaxed);
                    if results.contains(&b'd') {
                        // The run was found dead meanwhile (its lease lapsed).
                        died(inner, worker, &conn, &run).await;
                    }
                    return true;
                }
                Err(error) if is_connection(&error) => health.error("write task states", &error),
                Err(error) => health.error("write task states (redis refused the batch)", &error),
            }
        } else if !Arc::ptr_eq(&run, &inner.current_run()) {
            continue; // a new run began: its updates go out under it
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.stop.cancelled() => return false,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A number, or `''` for none: one argument either way, written without a `String`.
struct Optional(Option<u64>);

impl redis::ToRedisArgs for Optional {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        match self.0 {
            Some(value) => value.write_redis_args(out),
            None => out.write_arg(b""),
        }
    }
}

/// The codes of the `WRITE` calls of a pipeline, in order: one byte per update (see
/// `scripts/write.lua`).
fn codes(values: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        match value {
            Value::BulkString(bytes) => out.extend(bytes),
            Value::SimpleString(text) => out.extend(text.into_bytes()),
            Value::Array(items) => out.extend(codes(items)),
            _ => {}
        }
    }
    out
}

/// One `EVALSHA` of the `WRITE` script per [`PER_SCRIPT`] updates, after a `SCRIPT LOAD` of it (a few KiB per
/// batch, and no `NOSCRIPT` after Redis restarted).
fn pipeline(inner: &Shared, run: &Run, updates: &[Update]) -> redis::Pipeline {
    let keys = &inner.keys;
    let settings = &inner.settings;
    let lease_ms = settings.lease_ms();
    let retention_ms = u64::try_from(settings.retention.as_millis()).unwrap_or(u64::MAX);
    let sha = inner.scripts.write.get_hash();
    let mut pipe = redis::pipe();
    pipe.load_script(&inner.scripts.write).ignore();
    for chunk in updates.chunks(PER_SCRIPT) {
        let members: Vec<String> = chunk.iter().map(|update| digest(&update.id)).collect();
        let command = pipe.cmd("EVALSHA");
        command
            .arg(sha)
            .arg(6 + chunk.len())
            .arg(keys.index())
            .arg(keys.expiry())
            .arg(keys.owned(&inner.replica_hash, &run.incarnation))
            .arg(keys.lease(&inner.replica_hash))
            .arg(keys.dead(&inner.replica_hash, &run.incarnation))
            .arg(keys.epoch());
        for member in &members {
            command.arg(keys.job(member));
        }
        command
            .arg(&settings.replica)
            .arg(&run.incarnation)
            .arg(retention_ms)
            .arg(lease_ms);
        for (update, member) in chunk.iter().zip(&members) {
            let message = match &update.status {
                ClusterStatus::Failed(message) => message.as_str(),
                _ => "",
            };
            let progress = update.progress.as_ref();
            command
                .arg(&*update.id)
                .arg(member)
                .arg(update.generation)
                .arg(update.submitted_ms)
                .arg(update.status.stage())
                .arg(update.status.name())
                .arg(message)
                .arg(Optional(update.started_ms))
                .arg(Optional(update.finished_ms))
                .arg(if progress.is_some() { "1" } else { "0" })
                .arg(
                    progress
                        .and_then(|p| p.fraction)
                        .map_or_else(String::new, |f| f.to_string()),
                )
                .arg(Optional(progress.and_then(|p| p.done)))
                .arg(Optional(progress.and_then(|p| p.total)))
                .arg(progress.and_then(|p| p.message.as_deref()).unwrap_or(""))
                .arg(if progress.is_some_and(|p| p.message.is_some()) {
                    "1"
                } else {
                    "0"
                })
                .arg(Optional(inner.token_of(&update.id, update.generation)));
        }
    }
    pipe
}
