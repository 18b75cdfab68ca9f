//! What a replica does when it finds its run dead (its lease lapsed on Redis's clock: a pause,
//! a partition, a renewal that raced the expiry): it starts a new run for new work, and cancels
//! every task of the dead run that still runs here, whose record now reads `lost` for every
//! reader. It never writes them back as running: the scripts refuse every write of a dead run.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::redis::conn::Conn;

use crate::redis::call::retry;
use crate::redis::keys::digest;
use crate::redis::shared::{Run, Shared};
use crate::worker::Worker;

/// A record's `id`, `inc`, `gen` and `stage`, as far as they are there.
type Record = (Option<String>, Option<String>, Option<u64>, Option<u8>);

/// Handles the death of `dead` (a no-op if another caller already did): a new run begins, the
/// dead run's submissions whose records are not terminal are noted `lost` and cancelled here,
/// and a re-sync writes the new run's tasks.
pub(crate) async fn died(shared: &Shared, worker: &Worker, conn: &Conn, dead: &Arc<Run>) {
    let from_generation = shared.link.generations.load(Ordering::Acquire);
    let mut switched = None;
    shared.run.send_if_modified(|run| {
        if !Arc::ptr_eq(run, dead) {
            return false;
        }
        let next = Arc::new(Run::new(from_generation.max(dead.from_generation)));
        switched = Some(Arc::clone(&next));
        *run = next;
        true
    });
    let Some(next) = switched else { return };
    let health = &shared.link.health;
    health.runs_lost.fetch_add(1, Ordering::Relaxed);
    health.lease_held.store(false, Ordering::Release);
    #[cfg(feature = "metrics")]
    metrics::counter!("background_worker_mirror_runs_lost_total").increment(1);

    // The dead run's submissions that this worker still has, and which of them Redis has
    // terminal (those keep their status; every other one is lost).
    let tasks: Vec<_> = worker
        .tasks()
        .into_iter()
        .filter(|info| (dead.from_generation..next.from_generation).contains(&info.generation))
        .collect();
    let keys = &shared.keys;
    let records: Vec<Record> = if tasks.is_empty() {
        Vec::new()
    } else {
        retry(health, "read a dead run's records", || {
            let mut conn = conn.clone();
            let mut pipe = redis::pipe();
            for info in &tasks {
                pipe.cmd("HMGET")
                    .arg(keys.job(&digest(&info.id)))
                    .arg("id")
                    .arg("inc")
                    .arg("gen")
                    .arg("stage");
            }
            async move { pipe.query_async(&mut conn).await }
        })
        .await
        .unwrap_or_default()
    };
    let mut lost = HashMap::new();
    for (index, info) in tasks.iter().enumerate() {
        let terminal_there = match records.get(index) {
            Some((Some(id), Some(inc), Some(generation), Some(stage))) => {
                *id == info.id && *inc == dead.incarnation && *generation == info.generation && *stage == 3
            }
            // Unread (Redis failed meanwhile): terminal here means it was written or refused;
            // count only what still runs as lost.
            None => info.status.is_terminal(),
            Some(_) => false,
        };
        if !terminal_there {
            lost.insert(Arc::<str>::from(info.id.as_str()), info.generation);
        }
    }
    shared.note_lost(lost.iter().map(|(id, generation)| (Arc::clone(id), *generation)));
    let mut cancelled = 0u64;
    for info in &tasks {
        if info.status.is_terminal() || lost.get(info.id.as_str()) != Some(&info.generation) {
            continue;
        }
        cancelled += 1;
        let worker = worker.clone();
        let id = info.id.clone();
        let generation = info.generation;
        tokio::spawn(async move {
            if worker
                .task_info(&id)
                .is_some_and(|now| now.generation == generation)
            {
                let _ = worker.cancel(&id).await;
            }
        });
    }
    health
        .lost_tasks_cancelled
        .fetch_add(cancelled, Ordering::Relaxed);
    #[cfg(feature = "metrics")]
    metrics::counter!("background_worker_mirror_lost_tasks_cancelled_total").increment(cancelled);
    tracing::warn!(
        replica = %shared.settings.replica,
        dead_run = %dead.incarnation,
        new_run = %next.incarnation,
        lost = lost.len(),
        cancelled,
        "redis mirror: this replica's run was found dead (its lease lapsed); its unfinished jobs are lost and cancelled here, a new run begins"
    );
    shared.link.request_resync();
}
