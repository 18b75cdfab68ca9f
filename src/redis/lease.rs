//! The lease of this replica run: taken and renewed (by the heartbeat, and by the writer before
//! it writes while the lease is not held), and released on `close`.

use std::sync::atomic::Ordering;

use redis::aio::ConnectionManager;

use crate::redis::call::retry;
use crate::redis::error::ClusterError;
use crate::redis::shared::Shared;

/// Renews or takes the lease; returns whether it is held. A lease taken afresh after it was
/// held once (it expired, or Redis restarted and lost it) schedules a re-sync: what Redis knew
/// of this replica's jobs may be gone or marked lost.
///
/// The writer calls it too, before it writes while the lease is not held: a record must not
/// reach Redis before its replica's lease, or readers would report it lost.
pub(crate) async fn renew(inner: &Shared, conn: &ConnectionManager) -> bool {
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

/// Gives the lease back (after the flush): the replica left cleanly.
pub(crate) async fn release(inner: &Shared, conn: ConnectionManager) -> Result<(), ClusterError> {
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
