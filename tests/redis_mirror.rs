//! The Redis mirror against a real `redis-server` (see `redis_support`): what reaches Redis and
//! when, the stale-write fence, overflow and re-sync, hostile ids, malformed records, lost
//! replicas, cancel across replicas (by pub/sub and by the stored flag alone), the clean
//! close, an outage of Redis, a flood, and a password in the URL.
//!
//! These run in real time (Redis is a real process): every wait is bounded by
//! [`redis_support::eventually`], and each test uses a namespace of its own.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::{ClusterError, ClusterJob, ClusterStatus, Progress, RedisMirror, TaskStatus, Worker};
use redis::AsyncCommands;
use tokio::sync::Notify;

use redis_support::{eventually, namespace_keys, RedisServer};

/// The bound on anything the mirror should make visible "soon".
const SOON: Duration = Duration::from_secs(5);

/// A namespace of its own for each test run.
fn namespace(test: &str) -> String {
    format!("t-{test}-{}", std::process::id())
}

/// A mirror with test-friendly intervals and a worker that reports to it, started.
fn replica(url: &str, ns: &str, name: &str, lease: Duration) -> (RedisMirror, Worker) {
    replica_with(url, ns, name, lease, |builder| builder)
}

fn replica_with(
    url: &str,
    ns: &str,
    name: &str,
    lease: Duration,
    configure: impl FnOnce(background_worker::MirrorBuilder) -> background_worker::MirrorBuilder,
) -> (RedisMirror, Worker) {
    let builder = RedisMirror::builder(url)
        .namespace(ns)
        .replica(name)
        .lease(lease)
        .progress_interval(Duration::from_millis(50))
        .trim_interval(Duration::from_millis(100));
    let mirror = configure(builder).build().expect("valid settings");
    let worker = Worker::builder()
        .cancel_timeout(Duration::from_millis(500))
        .shutdown_timeout(Duration::from_millis(500))
        .observer(mirror.observer())
        .build();
    mirror.start(&worker).expect("start the mirror");
    (mirror, worker)
}

/// Waits until `mirror` shows job `id` with a status that passes `done`.
async fn cluster_status(
    mirror: &RedisMirror,
    id: &str,
    what: &str,
    done: impl Fn(&ClusterStatus) -> bool,
) -> background_worker::ClusterJob {
    eventually(&format!("{id} {what}"), SOON, || async {
        mirror
            .job(id)
            .await
            .ok()
            .flatten()
            .filter(|job| done(&job.status))
    })
    .await
}

/// A task that runs until `release` is notified.
async fn blocked(worker: &Worker, id: &str, release: &Arc<Notify>) {
    let release = Arc::clone(release);
    worker
        .submit(id.to_owned(), move || async move {
            release.notified().await;
            Ok(())
        })
        .await
        .expect("submit");
}

/// Every future of the API can be spawned (is `Send`), checked at compile time.
#[allow(dead_code, clippy::let_underscore_future)]
fn futures_are_send(mirror: &RedisMirror) {
    fn send<T: Send>(_: T) {}
    send(mirror.job("x"));
    send(mirror.jobs(None, 10));
    send(mirror.cancel("x", SOON));
    send(mirror.close(SOON));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_reaches_redis_and_the_namespace_lists() {
    let Some(redis) = RedisServer::shared("every_transition_reaches_redis_and_the_namespace_lists") else {
        return;
    };
    let ns = namespace("basic");
    let (mirror, worker) = replica(&redis.url(), &ns, "a", Duration::from_secs(10));
    let (other, _other_worker) = replica(&redis.url(), &ns, "b", Duration::from_secs(10));

    worker.submit("ok", || async { Ok(()) }).await.unwrap();
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker
        .submit_with_context("slow", |ctx| async move {
            ctx.set_progress(Progress::counter(3, 10).with_message("three"));
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();

    let ok = cluster_status(&other, "ok", "completed", |s| *s == ClusterStatus::Completed).await;
    assert_eq!(ok.replica, "a");
    assert_eq!(ok.generation, worker.task_info("ok").unwrap().generation);
    assert!(ok.started_at.is_some() && ok.finished_at.is_some(), "{ok:?}");
    let bad = cluster_status(&other, "bad", "failed", ClusterStatus::is_terminal).await;
    assert_eq!(bad.status, ClusterStatus::Failed("disk full".into()));
    // Progress is sampled at a bounded rate while the task runs.
    let slow = eventually("slow's progress", SOON, || async {
        other
            .job("slow")
            .await
            .ok()
            .flatten()
            .filter(|job| job.progress.is_some())
    })
    .await;
    assert_eq!(slow.status, ClusterStatus::Running);
    let progress = slow.progress.unwrap();
    assert_eq!((progress.done, progress.total), (Some(3), Some(10)));
    assert_eq!(progress.message.as_deref(), Some("three"));
    assert_absent(other.job("never-submitted").await);

    // Paged listing, oldest first, across pages of two.
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = other.jobs(after.as_ref(), 2).await.unwrap();
        seen.extend(page.jobs.into_iter().map(|job| job.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Oldest first; jobs submitted in the same millisecond come in no particular order.
    seen.sort();
    assert_eq!(seen, ["bad", "ok", "slow"]);

    // Health of a connected mirror.
    let health = mirror.health();
    assert!(
        health.connected && health.lease_held && !health.degraded,
        "{health:?}"
    );
    assert!(health.written >= 3, "{health:?}");
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_never_replaces_a_newer_state() {
    let Some(redis) = RedisServer::shared("a_late_write_never_replaces_a_newer_state") else {
        return;
    };
    let ns = namespace("fence");
    let (a, worker_a) = replica(&redis.url(), &ns, "a", Duration::from_secs(10));
    let (b, worker_b) = replica(&redis.url(), &ns, "b", Duration::from_secs(10));

    // Replica a runs "x"; then "x" is submitted again on b, and finishes there first.
    let release = Arc::new(Notify::new());
    blocked(&worker_a, "x", &release).await;
    cluster_status(&b, "x", "running on a", |s| *s == ClusterStatus::Running).await;
    tokio::time::sleep(Duration::from_millis(5)).await; // a later submission, by the clock
    worker_b.submit("x", || async { Ok(()) }).await.unwrap();
    let on_b = eventually("x completed on b", SOON, || async {
        a.job("x")
            .await
            .ok()
            .flatten()
            .filter(|job| job.replica == "b" && job.status.is_terminal())
    })
    .await;
    assert_eq!(on_b.status, ClusterStatus::Completed);

    // a's old task now ends: its late final write is refused in Redis.
    let fenced_before = a.health().fenced;
    release.notify_one();
    assert_eq!(worker_a.wait("x").await, Some(TaskStatus::Completed));
    eventually("a's stale write fenced", SOON, || async {
        (a.health().fenced > fenced_before).then_some(())
    })
    .await;
    let still = b.job("x").await.unwrap().unwrap();
    assert_eq!((still.replica.as_str(), still.generation), ("b", on_b.generation));

    // A terminal record never goes back: forge "completed" for a running submission of y,
    // then let y report progress (running writes of the same submission) and finish.
    worker_a
        .submit_with_context("y", |ctx| async move {
            for step in 0..5_u64 {
                ctx.set_progress(Progress::counter(step, 5));
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            anyhow::bail!("late failure")
        })
        .await
        .unwrap();
    cluster_status(&b, "y", "running", |s| *s == ClusterStatus::Running).await;
    let mut raw = redis.client().await;
    let key = a.job_key("y");
    let _: () = raw
        .hset_multiple(&key, &[("stage", "3"), ("st", "completed")])
        .await
        .unwrap();
    worker_a.wait("y").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // progress samples and the end were written
    let y = b.job("y").await.unwrap().unwrap();
    assert_eq!(y.status, ClusterStatus::Completed, "{y:?}");

    // Re-submitting on the same replica: the higher generation takes the record.
    worker_a.submit("y", || async { Ok(()) }).await.unwrap();
    let again = eventually("y re-submitted", SOON, || async {
        b.job("y")
            .await
            .ok()
            .flatten()
            .filter(|job| job.generation > y.generation && job.status.is_terminal())
    })
    .await;
    assert_eq!(again.status, ClusterStatus::Completed, "{again:?}");

    // Racing re-submissions of one id on both replicas: the record ends with the latest
    // submission (submission time, then replica name), whatever order the writes arrive in.
    for round in 0..40 {
        let (first, second) = if round % 2 == 0 {
            (&worker_a, &worker_b)
        } else {
            (&worker_b, &worker_a)
        };
        let id = "race";
        let _ = first.submit(id, || async { Ok(()) }).await;
        let _ = second.submit(id, || async { Ok(()) }).await;
        first.wait(id).await;
        second.wait(id).await;
    }
    let info_a = worker_a.task_info("race").unwrap();
    let info_b = worker_b.task_info("race").unwrap();
    let ms = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let winner = if (ms(info_a.submitted_at), "a") > (ms(info_b.submitted_at), "b") {
        ("a", info_a.generation)
    } else {
        ("b", info_b.generation)
    };
    let raced = eventually("race settled", SOON, || async {
        let job = a.job("race").await.ok().flatten()?;
        (job.replica == winner.0 && job.generation == winner.1 && job.status.is_terminal()).then_some(job)
    })
    .await;
    assert_eq!(raced.status, ClusterStatus::Completed);

    worker_a.shutdown().await;
    worker_b.shutdown().await;
    a.close(SOON).await.unwrap();
    b.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_queue_resyncs_from_the_registry() {
    let Some(redis) = RedisServer::shared("an_overflowing_queue_resyncs_from_the_registry") else {
        return;
    };
    let ns = namespace("overflow");
    let mirror = RedisMirror::builder(redis.url())
        .namespace(&ns)
        .replica("a")
        .queue_capacity(4)
        .build()
        .unwrap();
    let worker = Worker::builder().observer(mirror.observer()).build();
    // 300 tasks, 900 transitions, before the mirror even starts: the queue holds 4.
    for n in 0..300 {
        worker
            .submit(format!("job-{n}"), || async { Ok(()) })
            .await
            .unwrap();
    }
    for n in 0..300 {
        worker.wait(&format!("job-{n}")).await;
    }
    let health = mirror.health();
    assert_eq!(health.queue_depth, 4, "{health:?}");
    assert!(
        health.needs_resync && health.overflows >= 1 && health.degraded,
        "{health:?}"
    );

    mirror.start(&worker).unwrap();
    for n in [0, 150, 299] {
        cluster_status(&mirror, &format!("job-{n}"), "completed", |s| {
            *s == ClusterStatus::Completed
        })
        .await;
    }
    let listed = eventually("all 300 listed", SOON, || async {
        let page = mirror.jobs(None, 1000).await.ok()?;
        (page.jobs.len() == 300 && page.jobs.iter().all(|job| job.status == ClusterStatus::Completed))
            .then_some(page)
    })
    .await;
    assert!(listed.next.is_none());
    let health = mirror.health();
    assert!(health.resyncs >= 1 && !health.needs_resync, "{health:?}");
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

/// The queue's bound counts submissions, not transitions: a submission's later transitions
/// merge into its waiting entry and never need room, so a burst of short tasks within the bound
/// is written without a re-sync, each at its final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submissions_transitions_wait_as_one_entry() {
    let Some(redis) = RedisServer::shared("a_submissions_transitions_wait_as_one_entry") else {
        return;
    };
    let ns = namespace("merged");
    let mirror = RedisMirror::builder(redis.url())
        .namespace(&ns)
        .replica("a")
        .queue_capacity(10)
        .build()
        .unwrap();
    let worker = Worker::builder().observer(mirror.observer()).build();
    // 10 tasks, 30 transitions, before the mirror starts: 10 entries, nothing dropped.
    for n in 0..10 {
        worker
            .submit(format!("job-{n}"), || async { Ok(()) })
            .await
            .unwrap();
        worker.wait(&format!("job-{n}")).await;
    }
    let health = mirror.health();
    assert_eq!(
        (health.queue_depth, health.overflows, health.needs_resync),
        (10, 0, false),
        "{health:?}"
    );
    // An eleventh submission finds no room.
    worker.submit("job-10", || async { Ok(()) }).await.unwrap();
    worker.wait("job-10").await;
    let health = mirror.health();
    assert!(health.overflows >= 1 && health.needs_resync, "{health:?}");

    mirror.start(&worker).unwrap();
    let listed = eventually("all 11 listed, completed", SOON, || async {
        let page = mirror.jobs(None, 100).await.ok()?;
        (page.jobs.len() == 11 && page.jobs.iter().all(|job| job.status == ClusterStatus::Completed))
            .then_some(page)
    })
    .await;
    assert!(listed.next.is_none());
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_stay_in_their_own_records() {
    let Some(redis) = RedisServer::shared("hostile_ids_stay_in_their_own_records") else {
        return;
    };
    let ns = namespace("hostile");
    let (mirror, worker) = replica(&redis.url(), &ns, "a\nb {c}:*", Duration::from_secs(10));
    let long = "x".repeat(64 * 1024);
    let ids: Vec<String> = [
        "*",
        "job:1",
        "job",
        "{ns}",
        "}{",
        "a b",
        "line\nbreak",
        "\0nul",
        "ünï",
        "job:1:",
        &long,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for (n, id) in ids.iter().enumerate() {
        let message = format!("failure {n}");
        worker
            .submit(id.clone(), move || async move { anyhow::bail!("{message}") })
            .await
            .unwrap();
    }
    for (n, id) in ids.iter().enumerate() {
        let job = cluster_status(&mirror, id, "failed", ClusterStatus::is_terminal).await;
        assert_eq!(&job.id, id);
        assert_eq!(job.status, ClusterStatus::Failed(format!("failure {n}")));
        assert_eq!(job.replica, "a\nb {c}:*");
    }
    let listed = mirror.jobs(None, 100).await.unwrap();
    assert_eq!(listed.jobs.len(), ids.len());
    // The key layout holds: every key is in the namespace's hash tag, and short.
    let mut raw = redis.client().await;
    let keys = namespace_keys(&mut raw, &ns).await;
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(
            key.starts_with(&format!("{{{ns}}}:")) && key.len() < 200,
            "{key:?}"
        );
    }
    assert_absent(mirror.job("job:1:x").await);
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_errors_not_panics() {
    let Some(redis) = RedisServer::shared("malformed_records_are_errors_not_panics") else {
        return;
    };
    let ns = namespace("malformed");
    let (mirror, worker) = replica(&redis.url(), &ns, "a", Duration::from_secs(10));
    let mut raw = redis.client().await;
    let malformed = |result: Result<Option<background_worker::ClusterJob>, ClusterError>| {
        matches!(result, Err(ClusterError::Malformed { .. }))
    };

    let _: () = raw
        .hset_multiple(
            mirror.job_key("weird"),
            &[("id", "weird"), ("st", "exploded"), ("rep", "a")],
        )
        .await
        .unwrap();
    assert!(malformed(mirror.job("weird").await));
    let _: () = raw
        .hset_multiple(
            mirror.job_key("nan"),
            &[
                ("id", "nan"),
                ("st", "completed"),
                ("rep", "a"),
                ("inc", "1"),
                ("gen", "x"),
                ("sub", "1"),
                ("upd", "1"),
            ],
        )
        .await
        .unwrap();
    assert!(malformed(mirror.job("nan").await));
    let _: () = raw.set(mirror.job_key("string"), "not a hash").await.unwrap();
    assert!(malformed(mirror.job("string").await));
    let _: () = raw
        .hset(mirror.job_key("bytes"), "id", &[0xff_u8, 0xfe][..])
        .await
        .unwrap();
    assert!(malformed(mirror.job("bytes").await));
    // A record that holds another id is not this job's.
    let _: () = raw
        .hset(mirror.job_key("mine"), "id", "someone else")
        .await
        .unwrap();
    assert_eq!(mirror.job("mine").await, Ok(None));

    // A listing that meets one of them is an error too.
    let member = mirror.job_key("weird").rsplit(':').next().unwrap().to_owned();
    let _: () = raw.zadd(format!("{{{ns}}}:jobs"), member, 1).await.unwrap();
    assert!(matches!(
        mirror.jobs(None, 10).await,
        Err(ClusterError::Malformed { .. })
    ));
    // ... and the mirror goes on writing.
    worker.submit("fine", || async { Ok(()) }).await.unwrap();
    cluster_status(&mirror, "fine", "completed", |s| *s == ClusterStatus::Completed).await;
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

/// A replica "killed" (its runtime dropped: no shutdown, no close) has its running job
/// reported lost within two leases, first at read time, then in the record itself.
#[test]
fn a_dead_replicas_jobs_are_lost_within_two_leases() {
    let Some(redis) = RedisServer::shared("a_dead_replicas_jobs_are_lost_within_two_leases") else {
        return;
    };
    let ns = namespace("lost");
    let lease = Duration::from_millis(600);
    let url = redis.url();
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_mirror, worker) = doomed.block_on(async {
        let (mirror, worker) = replica(&url, &ns, "doomed", lease);
        worker.submit("forever", std::future::pending).await.unwrap();
        (mirror, worker)
    });
    let observer = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    observer.block_on(async {
        let (mirror, _worker) = replica(&url, &ns, "watcher", lease);
        cluster_status(&mirror, "forever", "running", |s| *s == ClusterStatus::Running).await;
        let killed = Instant::now();
        doomed.shutdown_background();
        drop(worker);
        let lost = cluster_status(&mirror, "forever", "lost", |s| *s == ClusterStatus::Lost).await;
        let took = killed.elapsed();
        assert!(took <= 2 * lease, "lost after {took:?}, lease {lease:?}");
        assert_eq!(lost.replica, "doomed");
        // The trimmer writes it into the record, for every reader.
        let raw = redis.client().await;
        let key = mirror.job_key("forever");
        eventually("the record says lost", SOON, || {
            let mut raw = raw.clone();
            let key = key.clone();
            async move {
                let status: Option<String> = raw.hget(&key, "st").await.ok()?;
                (status.as_deref() == Some("lost")).then_some(())
            }
        })
        .await;
        let listed = mirror.jobs(None, 10).await.unwrap();
        assert_eq!(listed.jobs[0].status, ClusterStatus::Lost);
        mirror.close(SOON).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_owner_by_pubsub() {
    let Some(redis) = RedisServer::shared("cancel_reaches_the_owner_by_pubsub") else {
        return;
    };
    let ns = namespace("cancel-pubsub");
    // A long lease: the heartbeat (which would read the stored flag) comes only every 10 s.
    let (owner, owner_worker) = replica(&redis.url(), &ns, "owner", Duration::from_secs(30));
    let (caller, _caller_worker) = replica(&redis.url(), &ns, "caller", Duration::from_secs(30));
    owner_worker
        .submit_with_context("job", |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    cluster_status(&caller, "job", "running", |s| *s == ClusterStatus::Running).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // the owner's subscription is up
    let asked = Instant::now();
    let ended = caller.cancel("job", SOON).await.unwrap().unwrap();
    assert_eq!(ended.status, ClusterStatus::Cancelled, "{ended:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(
        owner_worker.get_task_status("job").await,
        Some(TaskStatus::Cancelled)
    );
    // Unknown everywhere; finished: returned as it is.
    assert_absent(caller.cancel("nope", SOON).await);
    assert_eq!(
        caller.cancel("job", SOON).await.unwrap().unwrap().status,
        ClusterStatus::Cancelled
    );
    owner_worker.shutdown().await;
    owner.close(SOON).await.unwrap();
    caller.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_gets_through_without_its_message() {
    let Some(redis) = RedisServer::shared("cancel_gets_through_without_its_message") else {
        return;
    };
    let ns = namespace("cancel-flag");
    // The owner never hears the pub/sub message: only the stored flag, read on its heartbeat
    // (every 300 ms with this lease), can reach it.
    let (owner, owner_worker) = replica_with(&redis.url(), &ns, "owner", Duration::from_millis(900), |b| {
        b.listen_for_cancels(false)
    });
    let (caller, _caller_worker) = replica(&redis.url(), &ns, "caller", Duration::from_secs(10));
    let release = Arc::new(Notify::new());
    blocked(&owner_worker, "job", &release).await;
    cluster_status(&caller, "job", "running", |s| *s == ClusterStatus::Running).await;
    let ended = caller.cancel("job", SOON).await.unwrap().unwrap();
    assert_eq!(ended.status, ClusterStatus::Cancelled, "{ended:?}");
    assert_eq!(
        owner_worker.get_task_status("job").await,
        Some(TaskStatus::Cancelled)
    );
    owner_worker.shutdown().await;
    owner.close(SOON).await.unwrap();
    caller.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_every_job_terminal_and_gives_the_lease_back() {
    let Some(redis) = RedisServer::shared("close_leaves_every_job_terminal_and_gives_the_lease_back") else {
        return;
    };
    let ns = namespace("close");
    let (leaving, worker) = replica(&redis.url(), &ns, "leaving", Duration::from_secs(10));
    let (staying, _staying_worker) = replica(&redis.url(), &ns, "staying", Duration::from_secs(10));
    for n in 0..20 {
        worker
            .submit(format!("job-{n}"), std::future::pending)
            .await
            .unwrap();
    }
    cluster_status(&staying, "job-19", "pending or running", |s| !s.is_terminal()).await;
    let report = worker.shutdown().await;
    assert_eq!(report.total(), 20);
    leaving.close(SOON).await.unwrap();
    let page = staying.jobs(None, 100).await.unwrap();
    assert_eq!(page.jobs.len(), 20);
    assert!(
        page.jobs.iter().all(|job| job.status == ClusterStatus::Cancelled),
        "{page:?}"
    );
    let mut raw = redis.client().await;
    let keys = namespace_keys(&mut raw, &ns).await;
    assert!(
        !keys
            .iter()
            .any(|key| key.contains(":owned:") || key.contains(":cancel:")),
        "{keys:?}"
    );
    let leases = keys.iter().filter(|key| key.contains(":lease:")).count();
    assert_eq!(leases, 1, "only the staying replica's lease is left: {keys:?}");
    assert_eq!(leaving.close(SOON).await, Ok(()), "closing twice is fine");
    staying.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_nothing() {
    let Some(mut redis) = RedisServer::start("a_redis_outage_loses_nothing") else {
        return;
    };
    let ns = namespace("outage");
    let (mirror, worker) = replica(&redis.url(), &ns, "a", Duration::from_secs(1));
    for n in 0..5 {
        worker
            .submit(format!("before-{n}"), || async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Ok(())
            })
            .await
            .unwrap();
    }
    cluster_status(&mirror, "before-4", "running", |s| *s == ClusterStatus::Running).await;

    redis.stop();
    // The worker does not notice: submits, queries and cancels are as fast as ever.
    let started = Instant::now();
    for n in 0..50 {
        worker
            .submit(format!("during-{n}"), || async { Ok(()) })
            .await
            .unwrap();
    }
    worker.submit("cancel-me", std::future::pending).await.unwrap();
    assert_eq!(worker.cancel("cancel-me").await, Ok(TaskStatus::Cancelled));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for n in 0..5 {
        assert_eq!(
            worker.wait(&format!("before-{n}")).await,
            Some(TaskStatus::Completed)
        );
    }
    let query_started = Instant::now();
    assert!(mirror.job("before-0").await.is_err());
    assert!(query_started.elapsed() < Duration::from_secs(5));
    eventually("degraded", SOON, || async {
        mirror.health().degraded.then_some(())
    })
    .await;
    assert!(mirror.health().last_error.is_some());

    // Redis comes back empty: everything, including what ended meanwhile, is visible within
    // 5 s.
    redis.restart();
    let back = Instant::now();
    for id in ["before-0", "before-4", "during-0", "during-49", "cancel-me"] {
        cluster_status(&mirror, id, "terminal", ClusterStatus::is_terminal).await;
    }
    assert!(back.elapsed() < Duration::from_secs(5), "{:?}", back.elapsed());
    assert_eq!(
        mirror.job("cancel-me").await.unwrap().unwrap().status,
        ClusterStatus::Cancelled
    );
    eventually("healthy again", SOON, || async {
        (!mirror.health().degraded).then_some(())
    })
    .await;
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_leaves_the_namespace_bounded() {
    let Some(redis) = RedisServer::shared("a_flood_leaves_the_namespace_bounded") else {
        return;
    };
    let ns = namespace("flood");
    let (mirror, worker) = replica_with(&redis.url(), &ns, "a", Duration::from_secs(10), |b| {
        b.retain_finished_for(Duration::from_millis(300))
    });
    const JOBS: usize = 20_000;
    for n in 0..JOBS {
        worker
            .submit(format!("flood-{n}"), || async { Ok(()) })
            .await
            .unwrap();
        if n % 1000 == 999 {
            worker.cleanup_finished_tasks().await;
            tokio::task::yield_now().await;
        }
    }
    let raw = redis.client().await;
    let index = format!("{{{ns}}}:jobs");
    let watched = &mirror;
    let keys = eventually("the namespace trimmed", Duration::from_secs(30), || {
        let mut raw = raw.clone();
        let index = index.clone();
        let ns = ns.clone();
        async move {
            let listed: usize = raw.zcard(&index).await.ok()?;
            let keys = namespace_keys(&mut raw, &ns).await;
            (listed == 0 && watched.health().queue_depth == 0 && keys.len() <= 5).then_some(keys)
        }
    })
    .await;
    eprintln!(
        "after {JOBS} jobs: {} keys left in the namespace: {keys:?}",
        keys.len()
    );
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_is_used() {
    let Some(redis) = RedisServer::start_with("a_password_in_the_url_is_used", &["--requirepass", "s3cret"])
    else {
        return;
    };
    let ns = namespace("auth");
    let url = format!("redis://:s3cret@127.0.0.1:{}", redis.port);
    let (mirror, worker) = replica(&url, &ns, "a", Duration::from_secs(10));
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    cluster_status(&mirror, "job", "completed", |s| *s == ClusterStatus::Completed).await;

    // A wrong password: errors in health and from queries, never a panic, and the worker runs.
    let wrong = format!("redis://:wrong@127.0.0.1:{}", redis.port);
    let (bad, bad_worker) = replica(&wrong, &ns, "b", Duration::from_secs(10));
    bad_worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(bad_worker.wait("job").await, Some(TaskStatus::Completed));
    assert!(bad.job("job").await.is_err());
    let health = eventually("an auth error in health", SOON, || async {
        let health = bad.health();
        health.last_error.is_some().then_some(health)
    })
    .await;
    assert!(
        !health.last_error.unwrap().contains("wrong"),
        "the password is not in the error"
    );
    assert!(matches!(
        bad.close(Duration::from_millis(500)).await,
        Err(ClusterError::Unflushed { .. }) | Err(ClusterError::Timeout { .. }) | Ok(())
    ));
    worker.shutdown().await;
    mirror.close(SOON).await.unwrap();

    // Settings errors.
    assert!(matches!(
        RedisMirror::builder("http://x").build(),
        Err(ClusterError::InvalidConfig { .. })
    ));
    assert!(matches!(
        RedisMirror::builder(url.as_str()).namespace("a{b}").build(),
        Err(ClusterError::InvalidConfig { .. })
    ));
    assert!(matches!(
        RedisMirror::builder(url.as_str()).replica("").build(),
        Err(ClusterError::InvalidConfig { .. })
    ));
}

/// No job: `None`, or, on a namespace Redis began serving less than a lease ago (as every test's
/// fresh namespace is), "not known yet" (never a job).
#[track_caller]
fn assert_absent(answer: Result<Option<ClusterJob>, ClusterError>) {
    assert!(
        matches!(answer, Ok(None) | Err(ClusterError::NotKnownYet { .. })),
        "{answer:?}"
    );
}

/// Self-fencing: with Redis gone for longer than `lease - margin`, the replica cancels its
/// unfinished tasks itself (and counts them); without the setting it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_fencing_cancels_unfinished_tasks_once_the_lease_is_unconfirmed() {
    let Some(mut redis) = RedisServer::start("self_fencing") else {
        return;
    };
    let ns = namespace("self-fence");
    let lease = Duration::from_millis(900);
    let (fenced, fenced_worker) = replica_with(&redis.url(), &ns, "fenced", lease, |builder| {
        builder.self_fence(Duration::from_millis(300))
    });
    let (plain, plain_worker) = replica(&redis.url(), &ns, "plain", lease);
    for worker in [&fenced_worker, &plain_worker] {
        worker
            .submit_with_context("long", |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await
            .unwrap();
    }
    cluster_status(&fenced, "long", "running", |status| {
        *status == ClusterStatus::Running
    })
    .await;
    eventually("both leases held", SOON, || async {
        (fenced.health().lease_held && plain.health().lease_held).then_some(())
    })
    .await;
    redis.stop();
    let stopped = Instant::now();
    eventually("the fenced replica's task cancelled", SOON, || async {
        (fenced_worker.get_task_status("long").await == Some(TaskStatus::Cancelled)).then_some(())
    })
    .await;
    let took = stopped.elapsed();
    // Not before `lease - margin` (600 ms) without a confirmed lease.
    assert!(took >= Duration::from_millis(300), "fenced after {took:?}");
    assert_eq!(fenced.health().self_fenced, 1);
    assert!(!fenced.health().lease_held);
    assert_eq!(
        plain_worker.get_task_status("long").await,
        Some(TaskStatus::Running),
        "without self-fencing the task runs on"
    );
    assert_eq!(plain.health().self_fenced, 0);
    for worker in [fenced_worker, plain_worker] {
        worker.shutdown().await;
    }
}
