//! The Redis mirror and claimed submissions on a real Redis Cluster (three masters, one replica
//! each, on loopback ports; see `redis_support/cluster.rs`), every mirror given
//! `redis+cluster://` and a node that does NOT serve the namespace's slot:
//!
//! - writes, reads, the listing, claims and cancels work across replicas through `MOVED` (a
//!   cancel by the stored flag alone, and one by a pub/sub message alone published on another
//!   node); with the slot's master and replica killed, health is not `connected` within about a
//!   lease and stays so (keyless calls are pinned to the slot), and a claim is `Unavailable`;
//! - a dead replica's job reads `lost`, then the record on the slot's master says so;
//! - a failover of the slot (`CLUSTER FAILOVER`, and the master killed), with every job polled
//!   every 50 ms: the epoch becomes the new master's, no status goes backwards, nothing seen
//!   goes missing, nothing reads `lost`, the cancel listeners subscribe again, a claim stays
//!   held through it, and every job ends with its true status;
//! - writes the old master acknowledged but never replicated (the replica frozen, its link
//!   cut, the master killed) are written again under a lease the new master still holds.
//!
//! These run in real time: every wait is bounded ([`redis_support::eventually`]), and every
//! server is killed when its test ends.

#![cfg(feature = "redis")]

#[path = "redis_support/cluster.rs"]
mod cluster;
mod redis_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use background_worker::{
    ClaimError, ClusterError, ClusterJob, ClusterStatus, RedisMirror, TaskStatus, Worker,
};
use tokio::sync::Notify;

use cluster::{node_cmd, RedisCluster};
use redis_support::eventually;

/// The bound on anything the mirror should make visible "soon" (generous: the machine is shared).
const SOON: Duration = Duration::from_secs(10);

fn namespace(test: &str) -> String {
    format!("c-{test}-{}", std::process::id())
}

/// A mirror with test-friendly intervals and a worker that reports to it, started.
fn replica(url: &str, ns: &str, name: &str, lease: Duration) -> (RedisMirror, Worker) {
    let mirror = RedisMirror::builder(url)
        .namespace(ns)
        .replica(name)
        .lease(lease)
        .progress_interval(Duration::from_millis(50))
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

/// Waits until `mirror` shows job `id` with a status that passes `done`.
async fn cluster_status(
    mirror: &RedisMirror,
    id: &str,
    what: &str,
    done: impl Fn(&ClusterStatus) -> bool,
) -> ClusterJob {
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
async fn held(worker: &Worker, id: &str, release: &Arc<Notify>) {
    let release = Arc::clone(release);
    worker
        .submit(id.to_owned(), move || async move {
            release.notified().await;
            Ok(())
        })
        .await
        .expect("submit");
}

/// Claims `id` on `mirror` with a body that runs until `release` is notified, waiting out a
/// young epoch or a cluster that is moving; returns its fencing token.
async fn claim_held(mirror: &RedisMirror, id: &str, release: &Arc<Notify>) -> u64 {
    eventually(&format!("claim {id}"), SOON, || async {
        let release = Arc::clone(release);
        match mirror
            .submit(id.to_owned(), move |_| async move {
                release.notified().await;
                Ok(())
            })
            .await
        {
            Ok(token) => Some(token.get()),
            Err(ClaimError::NotKnownYet { .. } | ClaimError::Unavailable { .. }) => None,
            Err(other) => panic!("claim {id}: {other}"),
        }
    })
    .await
}

/// `mirror`'s answer to a claim of `id`, once it is not `Unavailable` or `NotKnownYet` (the
/// claim's body is never meant to run).
async fn claim_refused(mirror: &RedisMirror, id: &str) -> String {
    let answer = eventually(&format!("a claim of {id} answered"), SOON, || async {
        match mirror.submit(id.to_owned(), |_| async { Ok(()) }).await {
            Err(ClaimError::Unavailable { .. } | ClaimError::NotKnownYet { .. }) => None,
            other => Some(other),
        }
    })
    .await;
    match answer {
        Err(ClaimError::Held { replica, .. }) => replica,
        other => panic!("a claim of {id} must be refused as held: {other:?}"),
    }
}

/// The cluster's Redis as a plain single-node client sees it from `port`: `MOVED` for the
/// namespace's keys when that node does not serve the slot.
fn moved_from(port: u16, ns: &str) -> bool {
    let answer: redis::RedisResult<Option<String>> = node_cmd(port, &["GET", &format!("{{{ns}}}:probe")]);
    answer.is_err_and(|error| error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_slot_serves_reads_listing_claims_and_cancels() {
    let Some(mut cluster) =
        RedisCluster::start("a_node_without_the_slot_serves_reads_listing_claims_and_cancels")
    else {
        return;
    };
    let ns = namespace("any-node");
    let other = cluster.other_master(&ns);
    assert!(
        moved_from(other.port, &ns),
        "the premise: node {} answers MOVED",
        other.port
    );
    let url = RedisCluster::url(other.port);
    let lease = Duration::from_secs(3);
    let (a, a_worker) = replica(&url, &ns, "a", lease);
    let (b, _b_worker) = replica(&url, &ns, "b", lease);

    // Both cancel listeners subscribed (on whichever node the cluster client chose).
    eventually("two cancel channels subscribed", SOON, || async {
        (cluster.subscribed_channels(&ns).len() == 2).then_some(())
    })
    .await;
    // A claim: exclusive across replicas, its token in the listing.
    let release = Arc::new(Notify::new());
    let token = claim_held(&a, "claimed", &release).await;
    assert_eq!(claim_refused(&b, "claimed").await, "a");
    a_worker.submit("short", || async { Ok(()) }).await.unwrap();
    a_worker
        .submit_with_context("long", |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    let short = cluster_status(&b, "short", "completed", |s| *s == ClusterStatus::Completed).await;
    assert_eq!(short.replica, "a");
    let long = cluster_status(&b, "long", "running", |s| *s == ClusterStatus::Running).await;
    assert_eq!(long.replica, "a");
    let listed = b.jobs(None, 10).await.expect("list from b");
    let mut ids: Vec<&str> = listed.jobs.iter().map(|job| job.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["claimed", "long", "short"]);
    assert!(listed
        .jobs
        .iter()
        .any(|job| job.id == "claimed" && job.fencing_token == Some(token)));

    // The records live on the slot's master, which the URL does not name.
    let owner = cluster.master_of(&ns);
    assert_ne!(owner.port, other.port);
    let exists: i64 = node_cmd(owner.port, &["EXISTS", &a.job_key("long")]).unwrap();
    assert_eq!(exists, 1);

    // The pub/sub path alone: a cancel message published on another node (no stored request,
    // so no heartbeat can apply it) reaches a's listener through the cluster's broadcast.
    a_worker
        .submit_with_context("by-message", |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    let job = cluster_status(&b, "by-message", "running", |s| *s == ClusterStatus::Running).await;
    let payload = format!("{}:by-message", job.generation);
    let elsewhere = cluster.master_of(&ns).port;
    for channel in cluster.subscribed_channels(&ns) {
        let _: i64 = node_cmd(elsewhere, &["PUBLISH", &channel, &payload]).unwrap();
    }
    eventually("cancelled by the message alone", SOON, || async {
        (a_worker.get_task_status("by-message").await == Some(TaskStatus::Cancelled)).then_some(())
    })
    .await;

    let ended = b
        .cancel("long", SOON)
        .await
        .expect("cancel from b")
        .expect("known");
    assert_eq!(ended.status, ClusterStatus::Cancelled, "{ended:?}");
    assert_eq!(
        a_worker.get_task_status("long").await,
        Some(TaskStatus::Cancelled)
    );

    release.notify_one();
    cluster_status(&b, "claimed", "completed", |s| *s == ClusterStatus::Completed).await;
    for mirror in [&a, &b] {
        let health = eventually("healthy", SOON, || async {
            let health = mirror.health();
            (!health.degraded).then_some(health)
        })
        .await;
        assert!(health.connected && health.lease_held, "{health:?}");
    }

    // The namespace's slot gone (its master and replica killed; the URL's node lives on):
    // every call fails, so health says so within about a lease, and stays so (a keyless call
    // answered by another node would make it `connected` again).
    tokio::task::block_in_place(|| cluster.kill_shard(&ns));
    let down = Instant::now();
    let health = eventually("not connected", SOON, || async {
        let health = b.health();
        (!health.connected).then_some(health)
    })
    .await;
    let took = down.elapsed();
    assert!(health.degraded, "{health:?}");
    assert!(
        took <= lease + Duration::from_secs(3),
        "not connected only after {took:?}"
    );
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!b.health().connected, "{:?}", b.health());
    }
    assert!(
        matches!(
            b.submit("while-down", |_| async { Ok(()) }).await,
            Err(ClaimError::Unavailable { .. })
        ),
        "a claim while the slot is down is unavailable"
    );
    a_worker.submit("local", || async { Ok(()) }).await.unwrap();
    eventually("the local job ran", SOON, || async {
        (a_worker.get_task_status("local").await == Some(TaskStatus::Completed)).then_some(())
    })
    .await;
    a_worker.shutdown().await;
    let _ = a.close(Duration::from_secs(1)).await;
    let _ = b.close(Duration::from_secs(1)).await;
}

/// A replica "killed" (its runtime dropped: no shutdown, no close) has its running job
/// reported lost on the cluster, first at read time, then in the record on the slot's master.
#[test]
fn a_dead_replicas_jobs_are_lost_on_a_cluster() {
    let Some(cluster) = RedisCluster::start("a_dead_replicas_jobs_are_lost_on_a_cluster") else {
        return;
    };
    let ns = namespace("lost");
    let url = RedisCluster::url(cluster.other_master(&ns).port);
    let lease = Duration::from_millis(1000);
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
        // Two leases, plus slack for a shared machine.
        assert!(
            took <= 2 * lease + Duration::from_secs(1),
            "lost after {took:?}, lease {lease:?}"
        );
        assert_eq!(lost.replica, "doomed");
        let owner = cluster.master_of(&ns);
        let key = mirror.job_key("forever");
        eventually("the record says lost", SOON, || async {
            let status: Option<String> = node_cmd(owner.port, &["HGET", &key, "st"]).ok()?;
            (status.as_deref() == Some("lost")).then_some(())
        })
        .await;
        mirror.close(SOON).await.unwrap();
    });
}

/// What a reader saw of one job over time, for the no-regression check.
type Histories = Arc<Mutex<HashMap<String, Vec<Result<Option<ClusterStatus>, ClusterError>>>>>;

/// Polls `mirror` for every id in `ids` every 50 ms until `stop`, recording every answer.
fn watch(
    mirror: RedisMirror,
    ids: Vec<String>,
    stop: Arc<Notify>,
) -> (Histories, tokio::task::JoinHandle<()>) {
    let histories: Histories = Arc::default();
    let recorded = Arc::clone(&histories);
    let task = tokio::spawn(async move {
        loop {
            for id in &ids {
                let answer = mirror.job(id).await.map(|job| job.map(|job| job.status));
                recorded
                    .lock()
                    .unwrap()
                    .entry(id.clone())
                    .or_default()
                    .push(answer);
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.notified() => return,
            }
        }
    });
    (histories, task)
}

/// The order of a job's states: pending, running, lost, terminal.
fn stage(status: &ClusterStatus) -> u8 {
    match status {
        ClusterStatus::Pending => 0,
        ClusterStatus::Running => 1,
        ClusterStatus::Lost => 2,
        _ => 3,
    }
}

/// Every recorded history: once seen, a job is never missing (errors such as "not known yet"
/// or a timeout during the failover are allowed), never `lost` (no replica died), never goes
/// to an earlier stage, and a terminal status never changes.
fn check_histories(histories: &Histories) {
    let histories = histories.lock().unwrap();
    assert!(!histories.is_empty(), "the watcher recorded nothing");
    for (id, history) in histories.iter() {
        let mut last: Option<ClusterStatus> = None;
        for answer in history {
            match answer {
                Err(_) => {}
                Ok(None) => assert!(last.is_none(), "{id}: missing after {last:?}: {history:?}"),
                Ok(Some(status)) => {
                    assert_ne!(*status, ClusterStatus::Lost, "{id}: lost: {history:?}");
                    if let Some(previous) = &last {
                        assert!(
                            stage(status) >= stage(previous),
                            "{id}: {previous:?} -> {status:?}: {history:?}"
                        );
                        if previous.is_terminal() {
                            assert_eq!(status, previous, "{id}: a terminal status changed: {history:?}");
                        }
                    }
                    last = Some(status.clone());
                }
            }
        }
    }
}

/// The failover scenario both tests share: jobs finished, running and to be cancelled on a;
/// b watches them all through the failover `fail`, after which the running ones finish, one is
/// cancelled from b and a new one is submitted; every job must end with its true status, the
/// epoch must be the new master's, and nothing may regress in between.
async fn survive_failover(
    cluster: &mut RedisCluster,
    ns: &str,
    fail: impl FnOnce(&mut RedisCluster, &str) -> cluster::NodeLine,
) {
    let url = RedisCluster::url(cluster.other_master(ns).port);
    let lease = Duration::from_secs(1);
    let (a, a_worker) = replica(&url, ns, "a", lease);
    let (b, _b_worker) = replica(&url, ns, "b", lease);
    let release = Arc::new(Notify::new());
    let mut ids = Vec::new();
    for i in 0..10 {
        let id = format!("done-{i}");
        a_worker.submit(id.clone(), || async { Ok(()) }).await.unwrap();
        ids.push(id);
    }
    for i in 0..5 {
        let id = format!("held-{i}");
        held(&a_worker, &id, &release).await;
        ids.push(id);
    }
    a_worker
        .submit_with_context("to-cancel", |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    ids.push("to-cancel".to_owned());
    let claim_release = Arc::new(Notify::new());
    let first = claim_held(&a, "nightly", &claim_release).await;
    ids.push("nightly".to_owned());
    for id in &ids {
        cluster_status(&b, id, "seen", |s| *s != ClusterStatus::Pending).await;
    }
    let old = cluster.master_of(ns);
    let epoch_key = format!("{{{ns}}}:epoch");
    let old_rid: String = node_cmd(old.port, &["HGET", &epoch_key, "rid"]).unwrap();
    assert_eq!(old_rid, RedisCluster::run_id(old.port));

    // Before: the epoch is old (a lease since it began), so an unknown id is "not found".
    eventually("an unknown id is not found", SOON, || async {
        matches!(b.job("never-submitted").await, Ok(None)).then_some(())
    })
    .await;
    let stop = Arc::new(Notify::new());
    let (histories, watcher) = watch(b.clone(), ids.clone(), Arc::clone(&stop));
    let new = tokio::task::block_in_place(|| fail(cluster, ns));
    assert_ne!(new.port, old.port, "the slot moved");

    // The new master has another `run_id`: a new epoch begins, in which an unknown id is "not
    // known yet" for a lease (Redis may have forgotten it), then "not found" again.
    let answer = eventually("an answer after the failover", SOON, || async {
        match b.job("never-submitted").await {
            Err(ClusterError::Redis { .. } | ClusterError::Timeout { .. }) => None,
            answer => Some(answer),
        }
    })
    .await;
    assert!(
        matches!(answer, Err(ClusterError::NotKnownYet { .. })),
        "right after the failover, an unknown id must be not known yet: {answer:?}"
    );
    let new_rid = RedisCluster::run_id(new.port);
    assert_ne!(new_rid, old_rid);
    let rid: String = node_cmd(new.port, &["HGET", &epoch_key, "rid"]).unwrap();
    assert_eq!(rid, new_rid, "the epoch is the new master's");

    // The cancel listeners are subscribed again (the killed node took its subscribers along).
    eventually(
        "two cancel channels subscribed after the failover",
        SOON,
        || async { (cluster.subscribed_channels(ns).len() == 2).then_some(()) },
    )
    .await;

    // The claim is still held by a, on the new master.
    assert_eq!(claim_refused(&b, "nightly").await, "a");

    // Work goes on after the failover: the held jobs finish, one is cancelled from b, a new one
    // is submitted.
    for _ in 0..5 {
        release.notify_one();
    }
    claim_release.notify_one();
    let cancelled = b
        .cancel("to-cancel", SOON)
        .await
        .expect("cancel after the failover")
        .expect("known");
    assert_eq!(cancelled.status, ClusterStatus::Cancelled, "{cancelled:?}");
    a_worker.submit("after", || async { Ok(()) }).await.unwrap();
    for id in ids.iter().chain(["after".to_owned()].iter()) {
        let want = if id == "to-cancel" {
            ClusterStatus::Cancelled
        } else {
            ClusterStatus::Completed
        };
        cluster_status(&b, id, "final", |s| *s == want).await;
    }
    eventually(
        "an unknown id is not found again, a lease later",
        SOON,
        || async { matches!(b.job("never-submitted").await, Ok(None)).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.notify_one();
    tokio::time::timeout(SOON, watcher)
        .await
        .expect("the watcher stops")
        .unwrap();
    check_histories(&histories);
    // Once the claimed job ended, the id is free again, with a greater token.
    let second = claim_held(&b, "nightly", &claim_release).await;
    assert!(second > first, "{second} > {first}");
    claim_release.notify_one();
    for id in &ids {
        let history = &histories.lock().unwrap()[id];
        assert!(
            history
                .iter()
                .any(|answer| matches!(answer, Ok(Some(s)) if s.is_terminal())),
            "{id}: never seen final by the watcher: {history:?}"
        );
    }
    a_worker.shutdown().await;
    a.close(SOON).await.unwrap();
    b.close(SOON).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_keeps_every_status() {
    let Some(mut cluster) = RedisCluster::start("a_manual_failover_keeps_every_status") else {
        return;
    };
    let ns = namespace("manual");
    survive_failover(&mut cluster, &ns, |cluster, ns| cluster.failover(ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_keeps_every_status() {
    let Some(mut cluster) = RedisCluster::start("a_killed_master_keeps_every_status") else {
        return;
    };
    let ns = namespace("killed");
    survive_failover(&mut cluster, &ns, |cluster, ns| cluster.kill_master(ns)).await;
}

/// A failover that loses writes: the slot's replica is frozen (SIGSTOP) and its replication
/// link cut while a finishes its jobs, so the master acknowledges the `completed` records
/// without replicating them; then the
/// master is killed and the replica, thawed, takes over with those jobs still `running` and a's
/// lease (10 s) still held. The new master's `run_id` must be noticed at a's next renewal and
/// its tasks written again, so that the jobs end `completed` for every reader.
///
/// Caught the renewal that checked the epoch only while its grace was shorter than the lease
/// (the jobs read `running` forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_lost_in_a_failover_are_written_again() {
    let Some(mut cluster) = RedisCluster::start("writes_lost_in_a_failover_are_written_again") else {
        return;
    };
    let ns = namespace("lost-writes");
    let url = RedisCluster::url(cluster.other_master(&ns).port);
    let (a, a_worker) = replica(&url, &ns, "a", Duration::from_secs(10));
    let (b, _b_worker) = replica(&url, &ns, "b", Duration::from_secs(10));
    let release = Arc::new(Notify::new());
    let ids: Vec<String> = (0..5).map(|i| format!("held-{i}")).collect();
    for id in &ids {
        held(&a_worker, id, &release).await;
    }
    for id in &ids {
        cluster_status(&b, id, "running", |s| *s == ClusterStatus::Running).await;
    }
    let master = cluster.master_of(&ns);
    let replica_node = cluster.replica_of(&master);
    cluster.freeze(replica_node.port);
    // Cut the replication link while the replica cannot reconnect: what the master writes from
    // now on reaches no replica.
    let cut: i64 = node_cmd(master.port, &["CLIENT", "KILL", "TYPE", "replica"]).unwrap();
    assert_eq!(cut, 1, "one replica link cut");
    for _ in 0..ids.len() {
        release.notify_one();
    }
    // The master has them completed (its replica does not).
    for id in &ids {
        let key = a.job_key(id);
        eventually("the master has it completed", SOON, || async {
            let status: Option<String> = node_cmd(master.port, &["HGET", &key, "st"]).ok()?;
            (status.as_deref() == Some("completed")).then_some(())
        })
        .await;
    }
    tokio::task::block_in_place(|| {
        cluster.kill(master.port);
        cluster.thaw(replica_node.port);
        cluster.wait_serving(&ns, replica_node.port);
    });
    for id in &ids {
        cluster_status(&b, id, "completed again", |s| *s == ClusterStatus::Completed).await;
    }
    a_worker.shutdown().await;
    a.close(SOON).await.unwrap();
    b.close(SOON).await.unwrap();
}
