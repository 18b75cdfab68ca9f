//! The lease of this replica's current run: taken and renewed (by the heartbeat, and by the
//! writer before it writes while the lease is not confirmed), and released on `close`. A
//! renewal tells a kept lease from one that lapsed (`scripts/lease.lua`), so a healed partition
//! or a thawed pause is noticed at the first renewal that reaches Redis; and it checks the epoch,
//! so a lease kept across a failover (or a restart) still re-syncs the writes Redis may have
//! lost.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::redis::conn::Conn;

use crate::redis::call::retry;
use crate::redis::error::ClusterError;
use crate::redis::runs;
use crate::redis::shared::Shared;
use crate::worker::Worker;

/// Renews or takes the current run's lease; returns whether it is held now. A run found dead
/// is handled (`runs::died`) and the new run takes its lease at once. A lease that Redis forgot
/// (a restart, a flush, a failover: a young epoch) is taken again and schedules a re-sync; so
/// does a lease kept across a new epoch.
pub(crate) async fn renew(shared: &Shared, worker: &Worker, conn: &Conn) -> bool {
    for _ in 0..2 {
        let run = shared.current_run();
        let health = &shared.link.health;
        let keys = &shared.keys;
        let lease_key = keys.lease(&shared.replica_hash);
        let dead_key = keys.dead(&shared.replica_hash, &run.incarnation);
        let replicas = keys.replicas();
        let epoch = keys.epoch();
        let seen = keys.seen(&shared.replica_hash);
        let field = shared.replicas_field(&run);
        let fresh = if run.ever_held.load(Ordering::Acquire) {
            "0"
        } else {
            "1"
        };
        let sent = Instant::now();
        let result: redis::RedisResult<i64> = retry(health, "renew the lease", || {
            let mut conn = conn.clone();
            let mut invocation = shared.scripts.lease.key(&lease_key);
            invocation
                .key(&replicas)
                .key(&dead_key)
                .key(&epoch)
                .key(&seen)
                .arg(&run.incarnation)
                .arg(shared.settings.lease_ms())
                .arg(&field)
                .arg(&shared.settings.replica)
                .arg(fresh);
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await;
        match result {
            Ok(1) => {
                health.confirmed(sent);
                return true;
            }
            Ok(0) if !run.ever_held.swap(true, Ordering::AcqRel) => {
                health.confirmed(sent);
                return true;
            }
            Ok(0 | 2) => {
                tracing::warn!(
                    replica = %shared.settings.replica,
                    "redis mirror: redis forgot the lease or began a new epoch (a restart, a flush or a failover); the run goes on, re-syncing"
                );
                health.confirmed(sent);
                shared.link.request_resync();
                return true;
            }
            Ok(-2) => {
                runs::died(shared, worker, conn, &run).await;
            }
            Ok(_) => {
                health.lease_held.store(false, Ordering::Release);
                health.error(
                    "take the lease",
                    &format!(
                        "replica name {:?} is held by another process",
                        shared.settings.replica
                    ),
                );
                return false;
            }
            Err(_) => return false,
        }
    }
    false
}

/// Gives the current run's lease back (after the flush): the replica left cleanly.
pub(crate) async fn release(shared: &Shared, conn: Conn) -> Result<(), ClusterError> {
    let run = shared.current_run();
    let keys = &shared.keys;
    let lease_key = keys.lease(&shared.replica_hash);
    let replicas = keys.replicas();
    let owned = keys.owned(&shared.replica_hash, &run.incarnation);
    let cancels = keys.cancels(&shared.replica_hash, &run.incarnation);
    let field = shared.replicas_field(&run);
    retry(&shared.link.health, "release the lease", || {
        let mut conn = conn.clone();
        let mut invocation = shared.scripts.release.key(&lease_key);
        invocation
            .key(&replicas)
            .key(&owned)
            .key(&cancels)
            .arg(&run.incarnation)
            .arg(&field);
        async move { invocation.invoke_async::<i64>(&mut conn).await }
    })
    .await?;
    Ok(())
}
