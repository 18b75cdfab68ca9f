//! The heartbeat: holds the replica's lease (renewed every third of it, at least every second,
//! through `lease.rs`; judged on Redis's clock), self-fences when that is on and the lease was
//! not confirmed in time, reads the cancel requests stored for this replica (so a lost pub/sub message still
//! gets through), and samples the progress of running tasks at a bounded rate.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::redis::conn::Conn;
use tokio::time::Instant;

use crate::progress::Progress;
use crate::redis::call::retry;
use crate::redis::cancels::apply_cancel;
use crate::redis::lease::renew;
use crate::redis::shared::Shared;
use crate::redis::update::Update;
use crate::status::TaskStatus;
use crate::worker::Worker;

pub(crate) async fn run(inner: Arc<Shared>, worker: Worker, conn: Conn) {
    let settings = &inner.settings;
    let renew_every = settings.heartbeat_every();
    let mut fenced = false;
    let mut next_renewal = Instant::now();
    let mut next_sample = Instant::now() + settings.progress_interval;
    let mut sampled: HashMap<(Arc<str>, u64), Progress> = HashMap::new();
    loop {
        let now = Instant::now();
        if now >= next_renewal {
            next_renewal = now + renew_every;
            if renew(&inner, &worker, &conn).await {
                fenced = false;
                read_cancels(&inner, &worker, &conn).await;
            } else if !fenced {
                fenced = self_fence(&inner, &worker);
            }
            let kept = |id: &str, generation: u64| {
                worker
                    .task_info(id)
                    .is_some_and(|info| info.generation == generation)
            };
            inner.prune_lost(kept);
            inner.prune_claims(kept);
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

/// Applies the cancel requests stored for this replica run, then removes them.
async fn read_cancels(inner: &Shared, worker: &Worker, conn: &Conn) {
    let run = inner.current_run();
    let key = inner.keys.cancels(&inner.replica_hash, &run.incarnation);
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

/// With self-fencing on: once the lease was not confirmed for `lease - margin`, cancels every
/// unfinished task of the current run, before anyone can find the run dead. Returns whether it
/// did (once per outage: until the lease is confirmed again).
fn self_fence(inner: &Shared, worker: &Worker) -> bool {
    let Some(margin) = inner.settings.self_fence else {
        return false;
    };
    let run = inner.current_run();
    let health = &inner.link.health;
    let unconfirmed = health.unconfirmed_for();
    if !run.ever_held.load(Ordering::Acquire)
        || unconfirmed.is_none_or(|ago| ago < inner.settings.lease.saturating_sub(margin))
    {
        return false;
    }
    let unfinished: Vec<_> = worker
        .tasks_where(|status| !status.is_terminal())
        .into_iter()
        .filter(|info| info.generation >= run.from_generation)
        .collect();
    health
        .self_fenced
        .fetch_add(unfinished.len() as u64, Ordering::Relaxed);
    tracing::warn!(
        replica = %inner.settings.replica,
        tasks = unfinished.len(),
        ?unconfirmed,
        "redis mirror: the lease was not confirmed in time; self-fencing cancels this run's unfinished tasks"
    );
    for info in unfinished {
        let worker = worker.clone();
        tokio::spawn(async move {
            if worker
                .task_info(&info.id)
                .is_some_and(|now| now.generation == info.generation)
            {
                let _ = worker.cancel(&info.id).await;
            }
        });
    }
    true
}

/// Queues the progress of running tasks that changed since the last sample.
fn sample_progress(inner: &Shared, worker: &Worker, sampled: &mut HashMap<(Arc<str>, u64), Progress>) {
    let running = worker.tasks_where(|status| *status == TaskStatus::Running);
    let mut seen = HashMap::with_capacity(running.len());
    for info in running {
        let Some(progress) = info.progress.clone() else {
            continue;
        };
        let key = (Arc::<str>::from(info.id.as_str()), info.generation);
        if sampled.get(&key) != Some(&progress) {
            inner.link.send(Update::from_info(info));
        }
        seen.insert(key, progress);
    }
    *sampled = seen;
}
