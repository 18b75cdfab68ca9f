//! Automatic removal of finished entries: `retain_finished_for` (a time to live) and
//! `max_finished` (oldest first), and that nothing keeps running once the worker is shut down or
//! dropped.

mod common;

use std::sync::Arc;

use background_worker::{TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs};

/// Submits a body that sleeps `n` seconds and then completes.
async fn submit_sleeper(worker: &Worker, id: &str, n: u64) {
    worker
        .submit(id, move || async move {
            sleep_secs(n).await;
            Ok(())
        })
        .await
        .unwrap();
}

/// Tasks alive on the current runtime (the test body itself is not one of them).
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Which of `ids` are tracked.
fn tracked<'a>(worker: &Worker, ids: &[&'a str]) -> Vec<&'a str> {
    ids.iter().copied().filter(|id| worker.has_task(id)).collect()
}

#[tokio::test(start_paused = true)]
async fn without_retention_finished_entries_are_kept() {
    let worker = Worker::new();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    sleep_secs(24 * 60 * 60).await;

    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn a_finished_entry_stays_queryable_until_its_ttl() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    sleep_secs(9).await;

    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn a_finished_entry_is_removed_after_its_ttl() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    sleep_secs(11).await;

    assert!(!worker.has_task("job"));
    assert_eq!(worker.task_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_ttl_counts_from_the_finish_not_the_submission() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    submit_sleeper(&worker, "job", 5).await;

    sleep_secs(14).await; // finished at 5, expires at 15
    assert!(worker.has_task("job"));

    sleep_secs(2).await;
    assert!(!worker.has_task("job"));
}

#[tokio::test(start_paused = true)]
async fn each_entry_expires_on_its_own_ttl() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    submit_sleeper(&worker, "early", 1).await;
    submit_sleeper(&worker, "late", 4).await;

    sleep_secs(12).await;
    assert_eq!(tracked(&worker, &["early", "late"]), ["late"]);

    sleep_secs(3).await;
    assert!(tracked(&worker, &["early", "late"]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_ttl_removes_failed_and_cancelled_entries_too() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker
        .submit("failed", || async { anyhow::bail!("boom") })
        .await
        .unwrap();
    worker
        .submit("panicked", || async { panic!("bad input") })
        .await
        .unwrap();
    worker.submit("cancelled", forever).await.unwrap();
    worker.cancel("cancelled").await.unwrap();

    sleep_secs(11).await;

    assert!(tracked(&worker, &["failed", "panicked", "cancelled"]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_ttl_never_removes_a_running_task() {
    let worker = Worker::builder().retain_finished_for(secs(1)).build();
    worker.submit("running", forever).await.unwrap();
    submit_sleeper(&worker, "done", 1).await; // keeps the reaper busy meanwhile

    sleep_secs(100).await;

    assert_eq!(worker.get_task_status("running").await, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn the_ttl_never_removes_a_pending_task() {
    let worker = Worker::builder()
        .max_concurrent(1)
        .retain_finished_for(secs(1))
        .build();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();

    sleep_secs(100).await;

    assert_eq!(worker.get_task_status("pending").await, Some(TaskStatus::Pending));
}

#[tokio::test(start_paused = true)]
async fn an_old_entrys_ttl_does_not_remove_the_task_that_reused_its_id() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    sleep_secs(5).await;

    worker.submit("job", forever).await.unwrap();
    sleep_secs(10).await; // the first entry would have expired at 10

    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn a_reused_id_gets_a_fresh_ttl_when_it_finishes_again() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    sleep_secs(5).await;
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    sleep_secs(9).await; // 14 s: past the first finish's ttl, not the second's
    assert!(worker.has_task("job"));

    sleep_secs(2).await;
    assert!(!worker.has_task("job"));
}

#[tokio::test(start_paused = true)]
async fn ttl_removal_lowers_the_health_counts() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("ok", || async { Ok(()) }).await.unwrap();
    worker
        .submit("bad", || async { anyhow::bail!("boom") })
        .await
        .unwrap();
    worker.submit("running", forever).await.unwrap();

    sleep_secs(11).await;
    let health = worker.health();

    assert_eq!((health.completed, health.failed, health.running), (0, 0, 1));
    assert_eq!(health.total, 1);
}

#[tokio::test(start_paused = true)]
async fn max_finished_keeps_only_the_newest_finished_entries() {
    let worker = Worker::builder().max_finished(2).build();
    submit_sleeper(&worker, "first", 1).await;
    submit_sleeper(&worker, "second", 2).await;
    submit_sleeper(&worker, "third", 3).await;

    sleep_secs(4).await;

    assert_eq!(
        tracked(&worker, &["first", "second", "third"]),
        ["second", "third"]
    );
}

#[tokio::test(start_paused = true)]
async fn max_finished_removes_by_finish_time_not_submission_order() {
    let worker = Worker::builder().max_finished(2).build();
    submit_sleeper(&worker, "submitted-first-finished-last", 5).await;
    submit_sleeper(&worker, "finished-first", 1).await;
    submit_sleeper(&worker, "finished-second", 2).await;

    sleep_secs(6).await;

    assert_eq!(
        tracked(
            &worker,
            &[
                "submitted-first-finished-last",
                "finished-first",
                "finished-second"
            ]
        ),
        ["submitted-first-finished-last", "finished-second"]
    );
}

#[tokio::test(start_paused = true)]
async fn max_finished_applies_as_soon_as_a_task_finishes() {
    let worker = Worker::builder().max_finished(1).build();
    worker.submit("old", || async { Ok(()) }).await.unwrap();
    worker.wait("old").await;

    worker.submit("new", || async { Ok(()) }).await.unwrap();
    worker.wait("new").await;

    assert_eq!(tracked(&worker, &["old", "new"]), ["new"]);
}

#[tokio::test(start_paused = true)]
async fn max_finished_never_removes_pending_or_running_tasks() {
    let worker = Worker::builder().max_concurrent(2).max_finished(1).build();
    for id in ["done-1", "done-2", "done-3"] {
        worker.submit(id, || async { Ok(()) }).await.unwrap();
        worker.wait(id).await;
    }
    for id in ["running-1", "running-2", "pending-1", "pending-2"] {
        worker.submit(id, forever).await.unwrap();
    }
    settle().await;

    let health = worker.health();

    assert_eq!((health.running, health.pending, health.completed), (2, 2, 1));
    assert!(worker.has_task("done-3"));
}

#[tokio::test(start_paused = true)]
async fn max_finished_zero_removes_each_entry_as_it_finishes() {
    let worker = Worker::builder().max_finished(0).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    settle().await;

    assert!(!worker.has_task("job"));
}

#[tokio::test(start_paused = true)]
async fn ttl_and_max_finished_apply_together() {
    let worker = Worker::builder()
        .retain_finished_for(secs(10))
        .max_finished(2)
        .build();
    submit_sleeper(&worker, "first", 1).await;
    submit_sleeper(&worker, "second", 2).await;
    submit_sleeper(&worker, "third", 5).await;

    sleep_secs(6).await; // finished at 1, 2 and 5: the count removed "first"
    assert_eq!(
        tracked(&worker, &["first", "second", "third"]),
        ["second", "third"]
    );

    sleep_secs(8).await; // 14 s: the ttl removed "second" (at 12), not "third" (at 15)
    assert_eq!(tracked(&worker, &["first", "second", "third"]), ["third"]);
}

#[tokio::test(start_paused = true)]
async fn the_ttl_timer_task_ends_when_shutdown_begins() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    settle().await;
    assert_eq!(alive_tasks(), 1, "the ttl timer runs while the worker is open");

    worker.shutdown().await;
    settle().await;

    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_ttl_timer_task_ends_when_the_last_handle_is_dropped() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    let clone = worker.clone();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    settle().await;
    assert_eq!(alive_tasks(), 1, "the ttl timer runs while a handle is alive");

    drop(worker);
    settle().await;
    assert_eq!(alive_tasks(), 1, "a clone still holds the worker");

    drop(clone);
    settle().await;

    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn no_ttl_removal_happens_after_shutdown() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    worker.shutdown().await;
    sleep_secs(60).await;

    // The timer stopped with the shutdown; the entry is left for the caller to read or clean up.
    assert!(worker.has_task("job"));
}

#[tokio::test(start_paused = true)]
async fn no_task_is_left_on_the_runtime_after_the_last_handle_is_dropped() {
    let worker = Worker::builder().retain_finished_for(secs(10)).build();
    let payload = Arc::new(());
    let captured = Arc::clone(&payload);
    worker
        .submit_with_context("job", move |ctx| async move {
            ctx.cancelled().await;
            drop(captured);
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    drop(worker);
    sleep_secs(60).await;

    assert_eq!(Arc::strong_count(&payload), 1);
    assert_eq!(alive_tasks(), 0);
}
