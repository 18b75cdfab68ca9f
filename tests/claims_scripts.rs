//! The claim scripts on their own, against a real `redis-server` (see `redis_support`), loaded
//! exactly as the library builds them (`includes/run.lua` first):
//!
//! - `claim.lua`: refused while a live run holds the id (naming it, with its token); granted
//!   again, with a greater token, once the record is terminal or its run is dead; a repeated
//!   claim of the same submission gets the same token; a young epoch with no record is "not
//!   known yet"; a dead claimer claims nothing;
//! - `write.lua`'s token fence: a lower token is refused, a plain write never replaces a live
//!   claim, the claim's own submission writes through;
//! - `unclaim.lua`: takes back only that very pending claim.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script, Value};

use redis_support::RedisServer;

macro_rules! judging {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../src/redis/scripts/includes/run.lua"),
            include_str!(concat!("../src/redis/scripts/", $file))
        ))
    };
}

const LEASE_MS: u64 = 1_000;
const A: &str = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"; // sha1("a")
const B: &str = "e9d71f5ee7c92d6dc9e92ffdad17b8bd49418f98"; // sha1("b")

struct Ns(String);

impl Ns {
    fn k(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.0)
    }
    fn prefix(&self) -> String {
        format!("{{{}}}:", self.0)
    }
}

fn hash(replica: &str) -> &'static str {
    if replica == "a" {
        A
    } else {
        B
    }
}

async fn lease(conn: &mut MultiplexedConnection, ns: &Ns, replica: &str, run: &str) -> i64 {
    let h = hash(replica);
    judging!("lease.lua")
        .key(ns.k(&format!("lease:{h}")))
        .key(ns.k("replicas"))
        .key(ns.k(&format!("dead:{h}:{run}")))
        .key(ns.k("epoch"))
        .key(ns.k(&format!("seen:{h}")))
        .arg(run)
        .arg(LEASE_MS)
        .arg(format!("{h}:{run}"))
        .arg(replica)
        .arg("1")
        .invoke_async(conn)
        .await
        .expect("lease.lua")
}

/// The claim script's reply, as text.
async fn claim(
    conn: &mut MultiplexedConnection,
    ns: &Ns,
    replica: &str,
    run: &str,
    generation: u64,
) -> Vec<String> {
    let h = hash(replica);
    let reply: Vec<Value> = judging!("claim.lua")
        .key(ns.k("job:j"))
        .key(ns.k("jobs"))
        .key(ns.k("expiry"))
        .key(ns.k(&format!("owned:{h}:{run}")))
        .key(ns.k(&format!("lease:{h}")))
        .key(ns.k(&format!("dead:{h}:{run}")))
        .key(ns.k("epoch"))
        .key(ns.k("fence"))
        .arg("job-1")
        .arg("j")
        .arg(replica)
        .arg(run)
        .arg(generation)
        .arg(1_000)
        .arg(ns.prefix())
        .arg(LEASE_MS)
        .invoke_async(conn)
        .await
        .expect("claim.lua");
    reply
        .iter()
        .map(|value| match value {
            Value::Int(n) => n.to_string(),
            Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => panic!("claim.lua answered {other:?}"),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn write(
    conn: &mut MultiplexedConnection,
    ns: &Ns,
    replica: &str,
    run: &str,
    generation: u64,
    stage: u8,
    status: &str,
    token: &str,
) -> i64 {
    let h = hash(replica);
    // One update in write.lua's batch layout (KEYS 1-6, then the update's record; 4 shared ARGV,
    // then 16 per update).
    let codes: String = judging!("write.lua")
        .key(ns.k("jobs"))
        .key(ns.k("expiry"))
        .key(ns.k(&format!("owned:{h}:{run}")))
        .key(ns.k(&format!("lease:{h}")))
        .key(ns.k(&format!("dead:{h}:{run}")))
        .key(ns.k("epoch"))
        .key(ns.k("job:j"))
        .arg(replica)
        .arg(run)
        .arg(60_000)
        .arg(LEASE_MS)
        .arg("job-1")
        .arg("j")
        .arg(generation)
        .arg(2_000)
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
        .arg(token)
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

async fn unclaim(conn: &mut MultiplexedConnection, ns: &Ns, run: &str, generation: u64, token: &str) -> i64 {
    Script::new(include_str!("../src/redis/scripts/unclaim.lua"))
        .key(ns.k("job:j"))
        .key(ns.k("jobs"))
        .key(ns.k(&format!("owned:{A}:{run}")))
        .arg("j")
        .arg("a")
        .arg(run)
        .arg(generation)
        .arg(token)
        .invoke_async(conn)
        .await
        .expect("unclaim.lua")
}

async fn field(conn: &mut MultiplexedConnection, ns: &Ns, name: &str) -> Option<String> {
    conn.hget(ns.k("job:j"), name).await.expect("HGET")
}

async fn old_epoch(conn: &mut MultiplexedConnection, ns: &Ns, replicas: &[(&str, &str)]) {
    // The namespace's first lease began its epoch: wait one lease, until it is old, renewing
    // the leases meanwhile. The first renewal after a new epoch (the epoch key deleted) says
    // so (2: re-sync); every later one is a plain renewal.
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(LEASE_MS / 4)).await;
        for (replica, run) in replicas {
            let renewed = lease(conn, ns, replica, run).await;
            assert!(
                renewed == 1 || (round == 0 && renewed == 2),
                "{replica}'s lease renewed: {renewed}"
            );
        }
    }
}

#[tokio::test]
async fn a_claim_is_exclusive_while_live_and_free_once_terminal() {
    let Some(redis) = RedisServer::shared("a_claim_is_exclusive_while_live_and_free_once_terminal") else {
        return;
    };
    let mut conn = redis.client().await;
    let ns = Ns(format!("cs-live-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "a", "r1").await, 0);
    assert_eq!(lease(&mut conn, &ns, "b", "r2").await, 0);
    // A fresh namespace: its epoch is young, the id is not known yet.
    assert_eq!(claim(&mut conn, &ns, "a", "r1", 1).await[0], "-1");
    old_epoch(&mut conn, &ns, &[("a", "r1"), ("b", "r2")]).await;

    let granted = claim(&mut conn, &ns, "a", "r1", 1).await;
    assert_eq!(granted[0], "1");
    let first: u64 = granted[1].parse().unwrap();
    assert_eq!(field(&mut conn, &ns, "tok").await, Some(granted[1].clone()));
    assert_eq!(field(&mut conn, &ns, "st").await.as_deref(), Some("pending"));
    // The same submission again (its first answer lost): the same token.
    assert_eq!(claim(&mut conn, &ns, "a", "r1", 1).await, granted);
    // Another run: held, named, with the holder's token.
    assert_eq!(claim(&mut conn, &ns, "b", "r2", 7).await, ["0", "a", &granted[1]]);

    // The token fence of the write script.
    assert_eq!(
        write(&mut conn, &ns, "b", "r2", 7, 0, "pending", "").await,
        0,
        "plain write over a live claim"
    );
    let lower = (first - 1).to_string();
    assert_eq!(
        write(&mut conn, &ns, "b", "r2", 7, 3, "completed", &lower).await,
        0,
        "lower token"
    );
    assert_eq!(
        write(&mut conn, &ns, "a", "r1", 1, 1, "running", &granted[1]).await,
        1,
        "its own submission"
    );
    assert_eq!(
        write(&mut conn, &ns, "a", "r1", 1, 3, "completed", "").await,
        1,
        "its own, even without the token"
    );
    assert_eq!(
        field(&mut conn, &ns, "tok").await,
        Some(granted[1].clone()),
        "the token stays"
    );

    // Terminal: free again, with a greater token; the old owner's late write is refused.
    let again = claim(&mut conn, &ns, "b", "r2", 7).await;
    assert_eq!(again[0], "1");
    let second: u64 = again[1].parse().unwrap();
    assert!(second > first);
    assert_eq!(
        write(&mut conn, &ns, "a", "r1", 1, 3, "completed", &granted[1]).await,
        0,
        "stale token"
    );
    assert_eq!(field(&mut conn, &ns, "rep").await.as_deref(), Some("b"));
}

#[tokio::test]
async fn a_dead_runs_claim_is_free_and_a_dead_claimer_claims_nothing() {
    let Some(redis) = RedisServer::shared("a_dead_runs_claim_is_free_and_a_dead_claimer_claims_nothing")
    else {
        return;
    };
    let mut conn = redis.client().await;
    let ns = Ns(format!("cs-dead-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "a", "r1").await, 0);
    assert_eq!(lease(&mut conn, &ns, "b", "r2").await, 0);
    old_epoch(&mut conn, &ns, &[("a", "r1"), ("b", "r2")]).await;
    assert_eq!(claim(&mut conn, &ns, "a", "r1", 1).await[0], "1");
    // a's lease lapses.
    let _: () = conn.del(ns.k(&format!("lease:{A}"))).await.unwrap();
    assert_eq!(
        claim(&mut conn, &ns, "b", "r2", 1).await[0],
        "1",
        "a dead run's claim is free"
    );
    assert_eq!(
        claim(&mut conn, &ns, "a", "r1", 2).await,
        ["-3"],
        "a dead run claims nothing"
    );
}

#[tokio::test]
async fn unclaim_takes_back_only_that_pending_claim() {
    let Some(redis) = RedisServer::shared("unclaim_takes_back_only_that_pending_claim") else {
        return;
    };
    let mut conn = redis.client().await;
    let ns = Ns(format!("cs-unclaim-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "a", "r1").await, 0);
    old_epoch(&mut conn, &ns, &[("a", "r1")]).await;
    let granted = claim(&mut conn, &ns, "a", "r1", 1).await;
    assert_eq!(granted[0], "1");
    assert_eq!(unclaim(&mut conn, &ns, "r1", 1, "12").await, 0, "another token");
    assert_eq!(
        unclaim(&mut conn, &ns, "r1", 2, &granted[1]).await,
        0,
        "another generation"
    );
    assert_eq!(unclaim(&mut conn, &ns, "r1", 1, &granted[1]).await, 1);
    assert_eq!(field(&mut conn, &ns, "id").await, None);
    let score: Option<f64> = conn.zscore(ns.k("jobs"), "j").await.unwrap();
    assert_eq!(score, None, "its index entry goes with it");
    // A claim its task already wrote is not taken back.
    let granted = claim(&mut conn, &ns, "a", "r1", 3).await;
    assert_eq!(
        write(&mut conn, &ns, "a", "r1", 3, 1, "running", &granted[1]).await,
        1
    );
    assert_eq!(unclaim(&mut conn, &ns, "r1", 3, &granted[1]).await, 0);
}

#[tokio::test]
async fn nothing_is_granted_while_the_epoch_is_young() {
    let Some(redis) = RedisServer::shared("nothing_is_granted_while_the_epoch_is_young") else {
        return;
    };
    let mut conn = redis.client().await;
    let ns = Ns(format!("cs-young-{}", std::process::id()));
    assert_eq!(lease(&mut conn, &ns, "a", "r1").await, 0);
    assert_eq!(lease(&mut conn, &ns, "b", "r2").await, 0);
    old_epoch(&mut conn, &ns, &[("a", "r1"), ("b", "r2")]).await;
    let granted = claim(&mut conn, &ns, "a", "r1", 1).await;
    assert_eq!(granted[0], "1");
    assert_eq!(
        write(&mut conn, &ns, "a", "r1", 1, 3, "completed", &granted[1]).await,
        1
    );
    // Redis forgot (a flush of the epoch stands for a restart from an AOF that missed a later
    // claim): a finished record is not proof that the id is free.
    let _: () = conn.del(ns.k("epoch")).await.unwrap();
    let young = claim(&mut conn, &ns, "b", "r2", 1).await;
    assert_eq!(young[0], "-1", "{young:?}");
    // A live claim is still refused as held, young or not.
    let _: () = conn.del(ns.k("job:j")).await.unwrap();
    old_epoch(&mut conn, &ns, &[("a", "r1"), ("b", "r2")]).await;
    assert_eq!(claim(&mut conn, &ns, "a", "r1", 2).await[0], "1");
    let _: () = conn.del(ns.k("epoch")).await.unwrap();
    assert_eq!(claim(&mut conn, &ns, "b", "r2", 2).await[0], "0");
}
