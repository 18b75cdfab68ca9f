//! The mirror's Lua scripts on their own, against a real `redis-server` (see `redis_support`):
//! the fences of a run's death. Each script is loaded exactly as the library builds it: the
//! shared rules (`includes/run.lua`) followed by the script's file.
//!
//! - a dead run's late write is refused, and its job reads `lost` for good;
//! - a lease that lapsed is never quietly re-created by a late renewal;
//! - an accepted cancel survives the clean-up of a dead run: the job cannot end `completed`;
//! - the epoch: after a flush or a restart, nobody is dead and a missing id is "not known yet"
//!   for one lease; after it, the usual rules.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Script, Value};

use redis_support::RedisServer;

macro_rules! judging {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../src/redis/scripts/includes/run.lua"),
            include_str!(concat!("../src/redis/scripts/", $file))
        ))
    };
}

/// The leases here: short, so that a lapse takes a moment, and long enough that a loaded machine
/// never lets one lapse between two calls of one step (300 ms did, once, beside other builds).
const LEASE_MS: u64 = 1_000;

/// One namespace's keys and one replica `a` (its hash is made up: the scripts only compare it).
struct Ns {
    p: String,
}

impl Ns {
    fn new(name: &str) -> Self {
        Self {
            p: format!("{{{name}}}:"),
        }
    }
    fn k(&self, rest: &str) -> String {
        format!("{}{rest}", self.p)
    }
    fn lease(&self) -> String {
        // The read script names it from the record: the SHA-1 of the replica name "a".
        self.k("lease:86f7e437faa5a7fce15d1ddcb9eaeaea377667b8")
    }
    fn dead(&self, run: &str) -> String {
        self.k(&format!("dead:86f7e437faa5a7fce15d1ddcb9eaeaea377667b8:{run}"))
    }
}

async fn lease(conn: &mut MultiplexedConnection, ns: &Ns, run: &str, fresh: bool) -> i64 {
    judging!("lease.lua")
        .key(ns.lease())
        .key(ns.k("replicas"))
        .key(ns.dead(run))
        .key(ns.k("epoch"))
        .key(ns.k("seen:86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"))
        .arg(run)
        .arg(LEASE_MS)
        .arg(format!("a:{run}"))
        .arg("a")
        .arg(if fresh { "1" } else { "0" })
        .invoke_async(conn)
        .await
        .expect("lease.lua")
}

async fn write(conn: &mut MultiplexedConnection, ns: &Ns, run: &str, stage: u8, status: &str) -> i64 {
    let codes: String = judging!("write.lua")
        .key(ns.k("jobs"))
        .key(ns.k("expiry"))
        .key(ns.k(&format!("owned:a:{run}")))
        .key(ns.lease())
        .key(ns.dead(run))
        .key(ns.k("epoch"))
        .key(ns.k("job:j"))
        .arg("a")
        .arg(run)
        .arg(60_000)
        .arg(LEASE_MS)
        .arg("job-1")
        .arg("j")
        .arg(1)
        .arg(1_000)
        .arg(stage)
        .arg(status)
        .arg("")
        .arg("")
        .arg("")
        .arg("0")
        .arg("")
        .arg("")
        .arg("")
        .arg("")
        .arg("0")
        .arg("")
        .invoke_async(conn)
        .await
        .expect("write.lua");
    // One character per update: '1' written, '0' stale, 'c' a hash collision, 'd' a dead run.
    match codes.as_str() {
        "1" => 1,
        "0" => 0,
        "c" => -2,
        "d" => -3,
        other => panic!("one code per update, got {other:?}"),
    }
}

/// The read script's code and the record's status, if any.
async fn read(conn: &mut MultiplexedConnection, ns: &Ns, job: &str) -> (i64, Option<String>) {
    let reply: Vec<Value> = judging!("read.lua")
        .key(ns.k(&format!("job:{job}")))
        .key(ns.k("epoch"))
        .arg(&ns.p)
        .arg(LEASE_MS)
        .invoke_async(conn)
        .await
        .expect("read.lua");
    let code = match reply.first() {
        Some(Value::Int(code)) => *code,
        other => panic!("read.lua answered {other:?}"),
    };
    let status = reply[1..]
        .chunks_exact(2)
        .find_map(|pair| match (&pair[0], &pair[1]) {
            (Value::BulkString(name), Value::BulkString(value)) if name == b"st" => {
                Some(String::from_utf8_lossy(value).into_owned())
            }
            _ => None,
        });
    (code, status)
}

async fn cancel(conn: &mut MultiplexedConnection, ns: &Ns, run: &str) -> i64 {
    judging!("cancel.lua")
        .key(ns.k("job:j"))
        .key(ns.lease())
        .key(ns.dead(run))
        .key(ns.k("epoch"))
        .key(ns.k(&format!("cancel:a:{run}")))
        .arg("job-1")
        .arg("j")
        .arg("a")
        .arg(run)
        .arg(1)
        .arg(3_600_000)
        .arg(LEASE_MS)
        .invoke_async(conn)
        .await
        .expect("cancel.lua")
}

async fn mark_lost(conn: &mut MultiplexedConnection, ns: &Ns, run: &str) -> i64 {
    judging!("mark_lost.lua")
        .key(ns.k("job:j"))
        .key(ns.lease())
        .key(ns.k("expiry"))
        .key(ns.k(&format!("owned:a:{run}")))
        .key(ns.dead(run))
        .key(ns.k("epoch"))
        .arg("a")
        .arg(run)
        .arg(60_000)
        .arg("j")
        .arg("0")
        .arg(LEASE_MS)
        .invoke_async(conn)
        .await
        .expect("mark_lost.lua")
}

async fn forget(conn: &mut MultiplexedConnection, ns: &Ns, run: &str) -> i64 {
    judging!("forget.lua")
        .key(ns.lease())
        .key(ns.k("replicas"))
        .key(ns.k(&format!("owned:a:{run}")))
        .key(ns.k(&format!("cancel:a:{run}")))
        .key(ns.dead(run))
        .key(ns.k("epoch"))
        .arg(run)
        .arg(format!("a:{run}"))
        .arg(LEASE_MS)
        .invoke_async(conn)
        .await
        .expect("forget.lua")
}

/// Lets the run's lease lapse on Redis's clock, with the epoch older than a lease.
async fn lapse() {
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 2)).await;
}

async fn server(test: &str) -> Option<(RedisServer, MultiplexedConnection)> {
    let redis = RedisServer::shared(test)?;
    let conn = redis.client().await;
    Some((redis, conn))
}

#[tokio::test]
async fn a_dead_runs_late_write_is_refused_and_its_job_stays_lost() {
    let Some((_redis, mut conn)) = server("a_dead_runs_late_write_is_refused").await else {
        return;
    };
    let ns = Ns::new(&format!("scripts-late-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "r1", true).await, 0, "first take");
    assert_eq!(write(&mut conn, &ns, "r1", 1, "running").await, 1);
    assert_eq!(read(&mut conn, &ns, "j").await, (1, Some("running".into())));
    lapse().await;
    // Every reader: lost, and the decision is written down.
    assert_eq!(read(&mut conn, &ns, "j").await, (2, Some("running".into())));
    // The owner thaws and writes its job's end: refused, the record unchanged.
    assert_eq!(write(&mut conn, &ns, "r1", 3, "completed").await, -3);
    assert_eq!(read(&mut conn, &ns, "j").await, (2, Some("running".into())));
    // The trimmer writes `lost` into it; still nothing of r1 gets through.
    assert_eq!(mark_lost(&mut conn, &ns, "r1").await, 1);
    assert_eq!(write(&mut conn, &ns, "r1", 1, "running").await, -3);
    assert_eq!(read(&mut conn, &ns, "j").await, (1, Some("lost".into())));
    // Even a later write of the same submission at a later stage: `lost` is final.
    assert_eq!(write(&mut conn, &ns, "r1", 3, "completed").await, -3);
}

#[tokio::test]
async fn a_lapsed_lease_is_never_quietly_recreated() {
    let Some((_redis, mut conn)) = server("a_lapsed_lease_is_never_quietly_recreated").await else {
        return;
    };
    let ns = Ns::new(&format!("scripts-lapse-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "r1", true).await, 0);
    assert_eq!(lease(&mut conn, &ns, "r1", false).await, 1, "kept");
    lapse().await;
    // A renewal that reaches Redis after the lapse (a healed partition, a thawed pause) is
    // told so, not "renewed" or "taken afresh"; so are the ones queued behind it.
    assert_eq!(lease(&mut conn, &ns, "r1", false).await, -2);
    assert_eq!(lease(&mut conn, &ns, "r1", false).await, -2);
    assert_eq!(
        lease(&mut conn, &ns, "r1", true).await,
        -2,
        "a stale first take too"
    );
    let mut raw = conn.clone();
    let held: Option<String> = redis::cmd("GET")
        .arg(ns.lease())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(held, None, "the dead run did not take the lease back");
    // The replica's next run takes it.
    assert_eq!(lease(&mut conn, &ns, "r2", true).await, 0);
    assert_eq!(lease(&mut conn, &ns, "r1", false).await, -2);
}

#[tokio::test]
async fn an_accepted_cancel_is_kept_across_a_dead_runs_clean_up() {
    let Some((_redis, mut conn)) = server("an_accepted_cancel_is_kept").await else {
        return;
    };
    let ns = Ns::new(&format!("scripts-cancel-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "r1", true).await, 0);
    assert_eq!(write(&mut conn, &ns, "r1", 1, "running").await, 1);
    // Accepted while the run lives: stored for the owner.
    assert_eq!(cancel(&mut conn, &ns, "r1").await, 1);
    // While the run lives, the clean-up keeps it.
    assert_eq!(forget(&mut conn, &ns, "r1").await, 0);
    let mut raw = conn.clone();
    let stored: Option<String> = redis::cmd("HGET")
        .arg(ns.k("cancel:a:r1"))
        .arg("j")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("1:job-1"));
    // The owner is partitioned past its lease, and a trimmer cleans its run up.
    lapse().await;
    assert_eq!(mark_lost(&mut conn, &ns, "r1").await, 1);
    assert_eq!(forget(&mut conn, &ns, "r1").await, 1);
    // The partition heals: the job cannot end completed (or failed).
    assert_eq!(write(&mut conn, &ns, "r1", 3, "completed").await, -3);
    assert_eq!(write(&mut conn, &ns, "r1", 3, "failed").await, -3);
    assert_eq!(read(&mut conn, &ns, "j").await, (1, Some("lost".into())));
    // A cancel now is not stored: the job is already lost.
    assert_eq!(cancel(&mut conn, &ns, "r1").await, 3);
}

#[tokio::test]
async fn a_cancel_of_a_dead_runs_job_answers_lost_and_stores_nothing() {
    let Some((_redis, mut conn)) = server("a_cancel_of_a_dead_runs_job").await else {
        return;
    };
    let ns = Ns::new(&format!("scripts-cancel-dead-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "r1", true).await, 0);
    assert_eq!(write(&mut conn, &ns, "r1", 1, "running").await, 1);
    lapse().await;
    assert_eq!(cancel(&mut conn, &ns, "r1").await, 2, "the run is dead: lost");
    assert_eq!(write(&mut conn, &ns, "r1", 3, "completed").await, -3);
}

#[tokio::test]
async fn redis_forgetting_is_not_a_death() {
    // Its own server: it flushes.
    let Some(redis) = RedisServer::start("redis_forgetting_is_not_a_death") else {
        return;
    };
    let mut conn = redis.client().await;
    let ns = Ns::new("scripts-epoch");
    assert_eq!(lease(&mut conn, &ns, "r1", true).await, 0);
    assert_eq!(write(&mut conn, &ns, "r1", 1, "running").await, 1);
    lapse().await;
    assert_eq!(
        lease(&mut conn, &ns, "r1", true).await,
        -2,
        "(a lapse after an old epoch)"
    );
    assert_eq!(lease(&mut conn, &ns, "r2", true).await, 0);
    assert_eq!(write(&mut conn, &ns, "r2", 1, "running").await, 1);

    // FLUSHALL: the record and the lease are gone. A missing id is "not known yet", for the
    // rest of one lease; the run that renews finds its lease forgotten, not itself dead.
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let (code, _) = read(&mut conn, &ns, "j").await;
    assert_eq!(code, -1, "not known yet");
    assert_eq!(lease(&mut conn, &ns, "r2", false).await, 2, "taken again, alive");
    assert_eq!(write(&mut conn, &ns, "r2", 1, "running").await, 1);
    assert_eq!(read(&mut conn, &ns, "missing").await.0, -1);
    lapse().await;
    assert_eq!(
        read(&mut conn, &ns, "missing").await.0,
        0,
        "after the grace: not found"
    );

    // A restart that reloaded its data (here: the stored run_id no longer matches, as after a
    // restart from AOF) with the lease expired meanwhile: not lost during the grace.
    let _: () = redis::cmd("DEL")
        .arg(ns.lease())
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(ns.k("epoch"))
        .arg("rid")
        .arg("a-previous-redis-process")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        read(&mut conn, &ns, "j").await,
        (1, Some("running".into())),
        "not lost"
    );
    assert_eq!(write(&mut conn, &ns, "r2", 1, "running").await, 1, "not refused");
    // Its owner never comes back: lost once the epoch is a lease old.
    lapse().await;
    assert_eq!(read(&mut conn, &ns, "j").await, (2, Some("running".into())));
    assert_eq!(write(&mut conn, &ns, "r2", 3, "completed").await, -3);
}

/// A failover whose promoted replica kept the lease but lost writes acknowledged just before:
/// the kept lease's renewal still reports the new epoch (2: re-sync), even when another
/// replica's script noticed the new `run_id` first; the renewal after that is a plain one.
#[tokio::test]
async fn a_lease_kept_across_a_new_epoch_re_syncs() {
    let Some((_redis, mut conn)) = server("a_lease_kept_across_a_new_epoch_re_syncs").await else {
        return;
    };
    let ns = Ns::new(&format!("scripts-kept-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "r1", true).await, 0);
    assert_eq!(lease(&mut conn, &ns, "r1", false).await, 1, "kept");
    // Another server process now serves the data (as after a failover): its run_id differs.
    let _: () = redis::cmd("HSET")
        .arg(ns.k("epoch"))
        .arg("rid")
        .arg("a-previous-redis-process")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Another replica's read of a missing id notices it first and begins the epoch.
    assert_eq!(read(&mut conn, &ns, "missing").await.0, -1, "not known yet");
    assert_eq!(
        lease(&mut conn, &ns, "r1", false).await,
        2,
        "the kept lease is told about the new epoch"
    );
    assert_eq!(
        lease(&mut conn, &ns, "r1", false).await,
        1,
        "then renewed as usual"
    );
}

/// One page of `page.lua`: `(member, score)` pairs after `cursor`, in `order`.
async fn page(
    conn: &mut MultiplexedConnection,
    ns: &Ns,
    cursor: Option<&(String, u64)>,
    limit: usize,
    order: &str,
) -> Vec<(String, u64)> {
    let (score, member) = match cursor {
        Some((member, score)) => (score.to_string(), member.clone()),
        None => ("-inf".to_owned(), String::new()),
    };
    let flat: Vec<String> = Script::new(include_str!("../src/redis/scripts/page.lua"))
        .key(ns.k("jobs"))
        .arg(score)
        .arg(member)
        .arg(limit)
        .arg(order)
        .invoke_async(conn)
        .await
        .expect("page.lua");
    flat.chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].parse().expect("a score")))
        .collect()
}

/// Walks every page of `limit` in `order`; `between` runs after each page (to change the index).
async fn walk(
    conn: &mut MultiplexedConnection,
    ns: &Ns,
    limit: usize,
    order: &str,
    mut between: impl FnMut(usize) -> Vec<(u64, String)>,
) -> Vec<(String, u64)> {
    let mut seen = Vec::new();
    let mut cursor = None;
    for n in 0..10_000 {
        let got = page(conn, ns, cursor.as_ref(), limit, order).await;
        assert!(got.len() <= limit, "page {n} holds {} > {limit}", got.len());
        seen.extend(got.iter().cloned());
        if got.len() < limit {
            return seen;
        }
        cursor = got.last().cloned();
        for (score, member) in between(n) {
            let _: () = redis::cmd("ZADD")
                .arg(ns.k("jobs"))
                .arg(score)
                .arg(member)
                .query_async(conn)
                .await
                .expect("ZADD");
        }
    }
    panic!("the walk did not end within 10 000 pages");
}

#[tokio::test]
async fn pages_walk_the_index_in_either_order_once_each_under_inserts() {
    let Some((_redis, mut conn)) = server("pages_walk_the_index").await else {
        return;
    };
    let ns = Ns::new(&format!("page-{}", std::process::id()));
    // 700 members on 5 scores: many ties, more than one 256-member batch per score.
    let mut index: Vec<(String, u64)> = (0..700u64)
        .map(|n| {
            (
                format!("{:040x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                1_000 + n % 5,
            )
        })
        .collect();
    for (member, score) in &index {
        let _: () = redis::cmd("ZADD")
            .arg(ns.k("jobs"))
            .arg(*score)
            .arg(member)
            .query_async(&mut conn)
            .await
            .expect("ZADD");
    }
    index.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let oldest_first = index.clone();
    let newest_first: Vec<_> = index.iter().rev().cloned().collect();

    for limit in [1, 7, 256, 1000] {
        assert_eq!(
            walk(&mut conn, &ns, limit, "asc", |_| Vec::new()).await,
            oldest_first,
            "asc, {limit}"
        );
    }
    for limit in [7, 255, 1000] {
        assert_eq!(
            walk(&mut conn, &ns, limit, "desc", |_| Vec::new()).await,
            newest_first,
            "desc, {limit}"
        );
    }

    // Newer jobs indexed during a newest-first walk (at the newest score and later) are not met
    // and shift nothing: the walk still sees exactly the jobs it started with.
    let mut added = 0u64;
    let walked = walk(&mut conn, &ns, 13, "desc", |n| {
        added += 1;
        vec![(1_004 + n as u64 % 2, format!("{:040x}", u64::MAX - added))]
    })
    .await;
    // Every added member sorts above the others at its score: it is newer than any cursor.
    assert!(added > 10, "the walk added {added} jobs");
    assert_eq!(walked, newest_first);

    // A cursor whose job is gone still pages from its place.
    let (gone, score) = newest_first[100].clone();
    let _: () = redis::cmd("ZREM")
        .arg(ns.k("jobs"))
        .arg(&gone)
        .query_async(&mut conn)
        .await
        .expect("ZREM");
    let after = page(&mut conn, &ns, Some(&(gone, score)), 5, "desc").await;
    assert_eq!(after, newest_first[101..106].to_vec());
}
