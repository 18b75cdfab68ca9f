//! Claimed submissions and fencing tokens against real `redis-server`s (see `redis_support`):
//!
//! - two replicas racing to claim one id, 1 000 rounds: exactly one body runs each round, and
//!   the loser's error names the winner;
//! - a claim is held while its job runs and free once it is terminal, with a greater token;
//! - a claim dies with its run (a lapsed lease): another replica claims the id;
//! - a claim survives a Redis restart with AOF; tokens keep increasing across restarts with
//!   and without persistence and across replicas; right after a restart that lost the data, a
//!   claim is "not known yet", never silently granted;
//! - a live claim that Redis forgot (a restart without persistence) is never granted again: the
//!   owner writes it back, with its token, within the epoch's grace;
//! - a claim the local worker refuses after Redis granted it is taken back at once;
//! - while Redis is down or black-holed, a claim fails within its bound with
//!   `ClaimError::Unavailable` and the body never runs.
//!
//! The scripts' own rules (the write fence's tokens, unclaim, the young epoch) are tested in
//! `claims_scripts.rs`.
//!
//! Real time (Redis is a real process); every wait is bounded.

#![cfg(feature = "redis")]

mod redis_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use background_worker::{ClaimError, ClusterJob, ClusterStatus, FencingToken, RedisMirror, Worker};
use redis::AsyncCommands;
use tokio::sync::Notify;

use redis_support::{eventually, RedisServer};

const SOON: Duration = Duration::from_secs(10);

fn namespace(test: &str) -> String {
    format!("c-{test}-{}", std::process::id())
}

fn replica(
    url: &str,
    ns: &str,
    name: &str,
    lease: Duration,
    query_timeout: Duration,
) -> (RedisMirror, Worker) {
    let mirror = RedisMirror::builder(url)
        .namespace(ns)
        .replica(name)
        .lease(lease)
        .query_timeout(query_timeout)
        .trim_interval(Duration::from_millis(100))
        .build()
        .expect("valid settings");
    let worker = Worker::builder()
        .cancel_timeout(Duration::from_millis(500))
        .shutdown_timeout(Duration::from_millis(500))
        .observer(mirror.observer())
        .build();
    mirror.start(&worker).expect("start the mirror");
    (mirror, worker)
}

/// Waits out the epoch's grace of a fresh namespace (Redis cannot tell a first use from a
/// Redis that forgot): claims a probe id until it is granted.
async fn ready(mirror: &RedisMirror) {
    let probe = format!("probe-{}", mirror.replica());
    eventually("the namespace's grace ends", SOON, || async {
        match mirror.submit(probe.clone(), |_| async { Ok(()) }).await {
            Ok(_) => Some(()),
            Err(ClaimError::NotKnownYet { .. }) => None,
            Err(other) => panic!("probe claim: {other:?}"),
        }
    })
    .await;
}

async fn terminal(mirror: &RedisMirror, id: &str) -> ClusterJob {
    eventually(&format!("{id} terminal in redis"), SOON, || async {
        mirror
            .job(id)
            .await
            .ok()
            .flatten()
            .filter(|job| job.status.is_terminal())
    })
    .await
}

/// Claims `id` on `mirror` with a body that waits for `release`.
async fn claim_blocked(
    mirror: &RedisMirror,
    id: &str,
    release: &Arc<Notify>,
) -> Result<FencingToken, ClaimError> {
    let release = Arc::clone(release);
    mirror
        .submit(id.to_owned(), move |_| async move {
            release.notified().await;
            Ok(())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_race_for_one_id_and_exactly_one_runs() {
    let Some(redis) = RedisServer::shared("two_replicas_race_for_one_id_and_exactly_one_runs") else {
        return;
    };
    let ns = namespace("race");
    let (a, wa) = replica(
        &redis.url(),
        &ns,
        "a",
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    let (b, wb) = replica(
        &redis.url(),
        &ns,
        "b",
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    ready(&a).await;
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    // Each round's bodies run until both claims were answered, so the winner's job is live
    // while the loser's claim is judged (a body that ended first would free the id: then a
    // second claim is a legitimate re-submission).
    let body = |runs: &Arc<Mutex<HashMap<String, usize>>>, id: String, release: &Arc<Notify>| {
        let runs = Arc::clone(runs);
        let release = Arc::clone(release);
        move |_: FencingToken| async move {
            *runs.lock().unwrap().entry(id).or_default() += 1;
            release.notified().await;
            Ok(())
        }
    };
    const ROUNDS: usize = 1_000;
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let id = format!("race-{round}");
        let release = Arc::new(Notify::new());
        let (ra, rb) = tokio::join!(
            a.submit(id.clone(), body(&runs, id.clone(), &release)),
            b.submit(id.clone(), body(&runs, id.clone(), &release))
        );
        match (&ra, &rb) {
            (Ok(_), Err(ClaimError::Held { replica, .. })) if replica == "a" => wins[0] += 1,
            (Err(ClaimError::Held { replica, .. }), Ok(_)) if replica == "b" => wins[1] += 1,
            other => panic!("round {round}: not exactly one claim: {other:?}"),
        }
        release.notify_one();
        let winner = if ra.is_ok() { &wa } else { &wb };
        tokio::time::timeout(SOON, winner.wait(&id))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the winner never finished"));
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), ROUNDS, "every winner ran");
    assert!(runs.values().all(|&count| count == 1), "a body ran twice");
    eprintln!("race: a won {}, b won {}", wins[0], wins[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_held_while_its_job_runs_and_free_once_terminal() {
    let Some(redis) = RedisServer::shared("a_claim_is_held_while_its_job_runs_and_free_once_terminal") else {
        return;
    };
    let ns = namespace("held");
    let (a, wa) = replica(
        &redis.url(),
        &ns,
        "a",
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    let (b, _wb) = replica(
        &redis.url(),
        &ns,
        "b",
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    ready(&a).await;
    let release = Arc::new(Notify::new());
    let first = claim_blocked(&a, "report", &release).await.expect("claimed");

    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let refused = b
        .submit("report", move |_| async move {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
    match refused {
        Err(ClaimError::Held {
            id,
            replica,
            fencing_token,
        }) => {
            assert_eq!((id.as_str(), replica.as_str()), ("report", "a"));
            assert_eq!(fencing_token, Some(first.get()));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Also refused on the holder itself, by the local rule, before Redis.
    assert!(matches!(
        a.submit("report", |_| async { Ok(()) }).await,
        Err(ClaimError::Submit(
            background_worker::SubmitError::DuplicateId { .. }
        ))
    ));

    release.notify_one();
    wa.wait("report").await;
    let job = terminal(&b, "report").await;
    assert_eq!(job.status, ClusterStatus::Completed);
    assert_eq!(job.fencing_token, Some(first.get()));

    // A re-submission, from the other replica: a greater token.
    let second = claim_blocked(&b, "report", &release)
        .await
        .expect("free once terminal");
    assert!(second > first, "{second} > {first}");
    let job = eventually("b's claim in redis", SOON, || async {
        a.job("report")
            .await
            .ok()
            .flatten()
            .filter(|job| job.replica == "b")
    })
    .await;
    assert_eq!(job.fencing_token, Some(second.get()));
    assert!(!ran.load(Ordering::SeqCst), "a refused body never runs");
    release.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_runs_claim_dies_with_it() {
    let Some(redis) = RedisServer::shared("a_dead_runs_claim_dies_with_it") else {
        return;
    };
    let ns = namespace("dead");
    let lease = Duration::from_millis(600);
    let (a, _wa) = replica(&redis.url(), &ns, "a", lease, Duration::from_secs(5));
    let (b, _wb) = replica(&redis.url(), &ns, "b", lease, Duration::from_secs(5));
    ready(&a).await;
    let release = Arc::new(Notify::new());
    let first = claim_blocked(&a, "sync", &release).await.expect("claimed");
    assert!(matches!(
        b.submit("sync", |_| async { Ok(()) }).await,
        Err(ClaimError::Held { .. })
    ));
    // a's lease lapses (as after a pause longer than the lease): its run is dead.
    let mut conn = redis.client().await;
    let lease_key = format!("{{{ns}}}:lease:86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
    let _: () = conn.del(&lease_key).await.unwrap();
    let started = Instant::now();
    let second = eventually("b claims the dead run's id", SOON, || async {
        match b.submit("sync", |_| async { Ok(()) }).await {
            Ok(token) => Some(token),
            Err(ClaimError::Held { .. }) => None,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
    assert!(second > first);
    eprintln!("claimed after the lapse in {:?}", started.elapsed());
    release.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_survives_a_redis_restart_with_aof_and_tokens_keep_increasing() {
    let dir = std::env::temp_dir().join(format!("claims-aof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.display().to_string();
    let Some(mut redis) = RedisServer::start_with(
        "a_claim_survives_a_redis_restart_with_aof",
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            &dir_arg,
        ],
    ) else {
        return;
    };
    let ns = namespace("aof");
    let lease = Duration::from_secs(2);
    let (a, wa) = replica(&redis.url(), &ns, "a", lease, Duration::from_secs(2));
    let (b, _wb) = replica(&redis.url(), &ns, "b", lease, Duration::from_secs(2));
    ready(&a).await;
    let release = Arc::new(Notify::new());
    let first = claim_blocked(&a, "nightly", &release).await.expect("claimed");

    redis.restart();
    // The claim came back from the AOF: refused at once, no grace needed.
    let held = eventually("b reaches the restarted redis", SOON, || async {
        match b.submit("nightly", |_| async { Ok(()) }).await {
            Err(ClaimError::Unavailable { .. }) => None,
            other => Some(other),
        }
    })
    .await;
    assert!(
        matches!(held, Err(ClaimError::Held { ref replica, .. }) if replica == "a"),
        "{held:?}"
    );
    release.notify_one();
    wa.wait("nightly").await;
    terminal(&b, "nightly").await;
    // Free, once the epoch's grace is over (until then nothing is granted: Redis may have
    // forgotten a later claim).
    let second = eventually("b claims the finished id", SOON, || async {
        match b.submit("nightly", |_| async { Ok(()) }).await {
            Ok(token) => Some(token),
            Err(ClaimError::NotKnownYet { .. }) => None,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
    assert!(second > first);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_increase_across_a_redis_that_forgot_everything() {
    let Some(mut redis) = RedisServer::start("tokens_increase_across_a_redis_that_forgot_everything") else {
        return;
    };
    let ns = namespace("forgot");
    let lease = Duration::from_millis(800);
    let (a, wa) = replica(&redis.url(), &ns, "a", lease, Duration::from_secs(2));
    ready(&a).await;
    let first = a.submit("weekly", |_| async { Ok(()) }).await.expect("claimed");
    wa.wait("weekly").await;
    terminal(&a, "weekly").await;

    redis.restart(); // empty: no persistence
                     // Right after, the id is "not known yet" (a live claim may be about to be written back),
                     // never granted on a Redis that forgot.
    let saw_not_known = AtomicBool::new(false);
    let second = eventually("a claims again after the grace", SOON, || async {
        match a.submit("weekly", |_| async { Ok(()) }).await {
            Ok(token) => Some(token),
            Err(ClaimError::NotKnownYet { retry_after, .. }) => {
                assert!(retry_after <= lease);
                saw_not_known.store(true, Ordering::SeqCst);
                None
            }
            Err(ClaimError::Unavailable { .. }) => None,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
    assert!(
        saw_not_known.load(Ordering::SeqCst),
        "a young epoch refuses a claim of an unknown id"
    );
    assert!(second > first, "{second} > {first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_fails_fast_while_redis_is_down_or_black_holed() {
    let Some(mut redis) = RedisServer::start("a_claim_fails_fast_while_redis_is_down_or_black_holed") else {
        return;
    };
    let ns = namespace("down");
    let bound = Duration::from_millis(500);
    let (a, wa) = replica(&redis.url(), &ns, "a", Duration::from_secs(1), bound);
    ready(&a).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let attempt = |id: &'static str| {
        let ran = Arc::clone(&ran);
        let a = a.clone();
        async move {
            let started = Instant::now();
            let result = a
                .submit(id, move |_| async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await;
            (result, started.elapsed())
        }
    };

    redis.signal("STOP"); // black-holed: connected, silent
    let (result, took) = attempt("paused").await;
    redis.signal("CONT");
    assert!(
        matches!(result, Err(ClaimError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(took < bound + Duration::from_millis(500), "bounded: {took:?}");

    redis.stop(); // down: refused connections
    let (result, took) = attempt("down").await;
    assert!(
        matches!(result, Err(ClaimError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(took < bound + Duration::from_millis(500), "bounded: {took:?}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no refused body ran");
    assert!(wa.task_info("paused").is_none() && wa.task_info("down").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_the_local_worker_refuses_is_taken_back_at_once() {
    let Some(redis) = RedisServer::shared("a_claim_the_local_worker_refuses_is_taken_back_at_once") else {
        return;
    };
    let ns = namespace("refused");
    // a's worker tracks one task: with one live task, a claim passes Redis and is then refused
    // by the worker (AtCapacity), after the claim.
    let mirror = RedisMirror::builder(redis.url())
        .namespace(ns.as_str())
        .replica("a")
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    let wa = Worker::builder()
        .max_tracked(1)
        .observer(mirror.observer())
        .build();
    mirror.start(&wa).unwrap();
    let (b, _wb) = replica(
        &redis.url(),
        &ns,
        "b",
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    ready(&b).await;
    let release = Arc::new(Notify::new());
    claim_blocked(&mirror, "first", &release).await.expect("claimed");

    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let refused = mirror
        .submit("second", move |_| async move {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(ClaimError::Submit(
                background_worker::SubmitError::AtCapacity { .. }
            ))
        ),
        "{refused:?}"
    );
    // Taken back atomically before the refusal returned: no record, and b claims it at once.
    assert_eq!(b.job("second").await.unwrap(), None);
    b.submit("second", |_| async { Ok(()) })
        .await
        .expect("free at once");
    assert!(!ran.load(Ordering::SeqCst));
    release.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_claim_comes_back_after_a_redis_that_forgot_it() {
    let Some(mut redis) = RedisServer::start("a_live_claim_comes_back_after_a_redis_that_forgot_it") else {
        return;
    };
    let ns = namespace("comeback");
    let lease = Duration::from_secs(1);
    let (a, wa) = replica(&redis.url(), &ns, "a", lease, Duration::from_secs(2));
    let (b, _wb) = replica(&redis.url(), &ns, "b", lease, Duration::from_secs(2));
    ready(&a).await;
    let release = Arc::new(Notify::new());
    let token = claim_blocked(&a, "live", &release).await.expect("claimed");

    redis.restart(); // empty: the claim is forgotten
                     // b is never granted the id while a's job runs: "not known yet" during the grace, then
                     // held again once a re-synced its tasks (with the token).
    let held = eventually("a's claim is back", SOON, || async {
        match b.submit("live", |_| async { Ok(()) }).await {
            Err(ClaimError::Held {
                replica,
                fencing_token,
                ..
            }) => Some((replica, fencing_token)),
            Err(ClaimError::NotKnownYet { .. } | ClaimError::Unavailable { .. }) => None,
            other => panic!("a forgotten live claim was granted again: {other:?}"),
        }
    })
    .await;
    assert_eq!(held, ("a".to_owned(), Some(token.get())));
    assert_eq!(
        a.local_job(wa.task_info("live").unwrap()).fencing_token,
        Some(token.get())
    );
    release.notify_one();
}
