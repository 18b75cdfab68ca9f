//! The heartbeat: holds the replica's lease (renewed every third of it through `lease.rs`,
//! judged on Redis's clock), reads the cancel requests stored for this replica (so a lost pub/sub message still
//! gets through), and samples the progress of running tasks at a bounded rate.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::progress::Progress;
use crate::redis::call::retry;
use crate::redis::cancels::apply_cancel;
use crate::redis::lease::renew;
use crate::redis::shared::Shared;
use crate::redis::update::Update;
use crate::status::TaskStatus;
use crate::worker::Worker;

pub(crate) async fn run(inner: Arc<Shared>, worker: Worker, conn: ConnectionManager) {
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

/// Applies the cancel requests stored for this replica run, then removes them.
async fn read_cancels(inner: &Shared, worker: &Worker, conn: &ConnectionManager) {
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
            inner.link.send(Update::from_info(info, false));
        }
        seen.insert(key, progress);
    }
    *sampled = seen;
}
