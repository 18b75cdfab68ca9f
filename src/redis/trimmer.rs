//! The trimmer, on a timer (not only when jobs finish): drops index entries of finished jobs
//! whose records expired, and writes `lost` into the unfinished records of dead replica runs
//! (any replica may do it; the scripts judge the run themselves, and that judgement is final,
//! so a race with a replica coming back, or with another trimmer, is harmless).

use std::collections::HashMap;
use std::sync::Arc;

use crate::redis::conn::Conn;

use crate::redis::call::retry;
use crate::redis::shared::Shared;

/// Index entries looked at per pipeline.
const BATCH: usize = 500;
/// Pipelines per tick at most, so one tick stays short; the next tick goes on.
const MAX_BATCHES: usize = 40;

pub(crate) async fn run(inner: Arc<Shared>, conn: Conn) {
    let mut tick = tokio::time::interval(inner.settings.trim_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = inner.stop.cancelled() => return,
        }
        // The next tick tries again.
        if let Err(error) = trim(&inner, &conn).await {
            inner.link.health.error("trim the index", &error);
        }
        if let Err(error) = sweep(&inner, &conn).await {
            inner.link.health.error("look for dead replicas", &error);
        }
    }
}

/// Drops the index entries of finished jobs whose records expired. Returns how many.
pub(crate) async fn trim(inner: &Shared, conn: &Conn) -> redis::RedisResult<usize> {
    let health = &inner.link.health;
    let keys = &inner.keys;
    let (index, expiry) = (keys.index(), keys.expiry());
    let mut dropped = 0;
    for _ in 0..MAX_BATCHES {
        let (seconds, micros): (u64, u64) = retry(health, "read the time", || {
            let mut conn = conn.clone();
            async move { redis::cmd("TIME").query_async(&mut conn).await }
        })
        .await?;
        let now_ms = seconds * 1000 + micros / 1000;
        let due: Vec<String> = retry(health, "list expired jobs", || {
            let mut conn = conn.clone();
            let mut cmd = redis::cmd("ZRANGEBYSCORE");
            cmd.arg(&expiry)
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(BATCH);
            async move { cmd.query_async(&mut conn).await }
        })
        .await?;
        if due.is_empty() {
            break;
        }
        let results: Vec<i64> = retry(health, "trim the index", || {
            let mut conn = conn.clone();
            let mut pipe = redis::pipe();
            pipe.load_script(&inner.scripts.trim).ignore();
            for member in &due {
                pipe.invoke_script(
                    inner
                        .scripts
                        .trim
                        .key(keys.job(member))
                        .key(&index)
                        .key(&expiry)
                        .arg(member),
                );
            }
            async move { pipe.query_async(&mut conn).await }
        })
        .await?;
        dropped += results.iter().filter(|&&result| result == 1).count();
        if due.len() < BATCH {
            break;
        }
    }
    Ok(dropped)
}

/// Marks the unfinished jobs of dead replica runs `lost`, then forgets those runs.
pub(crate) async fn sweep(inner: &Shared, conn: &Conn) -> redis::RedisResult<usize> {
    let health = &inner.link.health;
    let keys = &inner.keys;
    let runs: HashMap<String, String> = retry(health, "list replicas", || {
        let mut conn = conn.clone();
        let key = keys.replicas();
        async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await }
    })
    .await?;
    let retention_ms = u64::try_from(inner.settings.retention.as_millis()).unwrap_or(u64::MAX);
    let mut marked = 0;
    for (field, name) in runs {
        let Some((replica_hash, incarnation)) = field.split_once(':') else {
            continue;
        };
        let lease_key = keys.lease(replica_hash);
        let dead_key = keys.dead(replica_hash, incarnation);
        let epoch = keys.epoch();
        let lease_ms = inner.settings.lease_ms();
        let dead: i64 = retry(health, "judge a replica run", || {
            let mut conn = conn.clone();
            let mut invocation = inner.scripts.judge.key(&lease_key);
            invocation
                .key(&dead_key)
                .key(&epoch)
                .arg(incarnation)
                .arg(lease_ms);
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await?;
        if dead == 0 {
            continue;
        }
        let owned = keys.owned(replica_hash, incarnation);
        for _ in 0..MAX_BATCHES {
            let members: Vec<String> = retry(health, "list a dead replica's jobs", || {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("SRANDMEMBER");
                cmd.arg(&owned).arg(BATCH);
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
            if members.is_empty() {
                break;
            }
            let results: Vec<i64> = retry(health, "mark jobs lost", || {
                let mut conn = conn.clone();
                let mut pipe = redis::pipe();
                pipe.load_script(&inner.scripts.mark_lost).ignore();
                for member in &members {
                    pipe.invoke_script(
                        inner
                            .scripts
                            .mark_lost
                            .key(keys.job(member))
                            .key(&lease_key)
                            .key(keys.expiry())
                            .key(&owned)
                            .key(&dead_key)
                            .key(&epoch)
                            .arg(&name)
                            .arg(incarnation)
                            .arg(retention_ms)
                            .arg(member)
                            .arg("0")
                            .arg(lease_ms),
                    );
                }
                async move { pipe.query_async(&mut conn).await }
            })
            .await?;
            let now_marked = results.iter().filter(|&&result| result == 1).count();
            marked += now_marked;
            if now_marked > 0 {
                tracing::info!(replica = %name, jobs = now_marked, "redis mirror: a replica's lease expired, its jobs are lost");
            }
            if results.iter().all(|&result| result == 0) && members.len() < BATCH {
                // What is left (if anything) belongs to a run that came back: stop here.
                break;
            }
        }
        let _: i64 = retry(health, "forget a dead replica", || {
            let mut conn = conn.clone();
            let mut invocation = inner.scripts.forget.key(&lease_key);
            invocation
                .key(keys.replicas())
                .key(&owned)
                .key(keys.cancels(replica_hash, incarnation))
                .key(&dead_key)
                .key(&epoch)
                .arg(incarnation)
                .arg(&field)
                .arg(lease_ms);
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await?;
    }
    Ok(marked)
}
