//! `health()`: the cheap summary for health endpoints (counts per status, accepting, the
//! concurrency limit and how many tasks wait for a permit).

mod common;

use background_worker::{TaskStatus, Worker};
use common::{forever, settle, sleep_secs};

/// Runs one task of each terminal kind to its end: `completed`, `failed`, `panicked`, `cancelled`.
async fn finish_one_of_each(worker: &Worker) {
    worker.submit("completed", || async { Ok(()) }).await.unwrap();
    worker
        .submit("failed", || async { anyhow::bail!("boom") })
        .await
        .unwrap();
    worker
        .submit("panicked", || async { panic!("bad input") })
        .await
        .unwrap();
    worker.submit("cancelled", forever).await.unwrap();
    for id in ["completed", "failed", "panicked"] {
        assert!(worker.wait(id).await.unwrap().is_terminal());
    }
    assert_eq!(worker.cancel("cancelled").await, Ok(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn a_new_worker_is_empty_and_accepting() {
    let health = Worker::new().health();

    assert_eq!(
        (
            health.pending,
            health.running,
            health.completed,
            health.failed,
            health.cancelled
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(health.total, 0);
    assert!(health.accepting);
    assert_eq!(health.waiting_for_permit, 0);
}

#[tokio::test(start_paused = true)]
async fn health_counts_tasks_per_status() {
    let worker = Worker::builder().max_concurrent(1).build();
    finish_one_of_each(&worker).await;
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    settle().await;

    let health = worker.health();

    assert_eq!(health.pending, 1);
    assert_eq!(health.running, 1);
    assert_eq!(health.completed, 1);
    assert_eq!(health.failed, 2, "an error and a panic both count as failed");
    assert_eq!(health.cancelled, 1);
    assert_eq!(health.total, 6);
}

#[tokio::test(start_paused = true)]
async fn health_total_matches_task_count() {
    let worker = Worker::new();
    finish_one_of_each(&worker).await;
    worker.submit("running", forever).await.unwrap();

    assert_eq!(worker.health().total, worker.task_count());
    assert_eq!(worker.health().total, 5);
}

#[tokio::test(start_paused = true)]
async fn health_follows_a_task_through_its_statuses() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(2).await;
            Ok(())
        })
        .await
        .unwrap();
    let pending = worker.health();

    sleep_secs(1).await;
    let running = worker.health();

    sleep_secs(2).await;
    let completed = worker.health();

    assert_eq!((pending.pending, pending.running, pending.completed), (1, 0, 0));
    assert_eq!((running.pending, running.running, running.completed), (0, 1, 0));
    assert_eq!(
        (completed.pending, completed.running, completed.completed),
        (0, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn health_counts_drop_when_finished_tasks_are_cleaned_up() {
    let worker = Worker::new();
    finish_one_of_each(&worker).await;
    worker.submit("running", forever).await.unwrap();
    settle().await;

    worker.cleanup_finished_tasks().await;
    let health = worker.health();

    assert_eq!((health.completed, health.failed, health.cancelled), (0, 0, 0));
    assert_eq!(health.running, 1);
    assert_eq!(health.total, 1);
}

#[tokio::test(start_paused = true)]
async fn a_replaced_entry_is_counted_once_under_its_new_status() {
    let worker = Worker::new();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    worker.submit("job", forever).await.unwrap();
    settle().await;
    let health = worker.health();

    assert_eq!((health.completed, health.running, health.total), (0, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn accepting_is_false_once_shutdown_began() {
    let worker = Worker::new();
    assert!(worker.health().accepting);

    worker.shutdown().await;

    assert!(!worker.health().accepting);
}

#[tokio::test(start_paused = true)]
async fn accepting_is_false_on_every_clone_after_shutdown() {
    let worker = Worker::new();
    let clone = worker.clone();

    worker.shutdown().await;

    assert!(!clone.health().accepting);
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_nothing_is_pending_or_running() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    settle().await;

    worker.shutdown().await;
    let health = worker.health();

    assert_eq!((health.pending, health.running), (0, 0));
    assert_eq!(health.cancelled, 2);
    assert_eq!(health.waiting_for_permit, 0);
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_reports_the_configured_limit() {
    let limited = Worker::builder().max_concurrent(3).build();
    let unlimited = Worker::new();

    assert_eq!(limited.health().max_concurrent, Some(3));
    assert_eq!(unlimited.health().max_concurrent, None);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_permit_counts_pending_tasks_behind_the_limit() {
    let worker = Worker::builder().max_concurrent(2).build();
    for i in 0..5 {
        worker.submit(format!("job-{i}"), forever).await.unwrap();
    }
    settle().await;

    let health = worker.health();

    assert_eq!(health.running, 2);
    assert_eq!(health.pending, 3);
    assert_eq!(health.waiting_for_permit, 3);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_permit_drops_when_a_permit_is_freed() {
    let worker = Worker::builder().max_concurrent(1).build();
    for i in 0..3 {
        worker.submit(format!("job-{i}"), forever).await.unwrap();
    }
    settle().await;
    assert_eq!(worker.health().waiting_for_permit, 2);

    worker.cancel("job-0").await.unwrap();
    settle().await;

    let health = worker.health();
    assert_eq!(health.waiting_for_permit, 1);
    assert_eq!(health.running, 1);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_permit_drops_when_a_waiting_task_is_cancelled() {
    let worker = Worker::builder().max_concurrent(1).build();
    for i in 0..3 {
        worker.submit(format!("job-{i}"), forever).await.unwrap();
    }
    settle().await;

    worker.cancel("job-2").await.unwrap();
    settle().await;

    let health = worker.health();
    assert_eq!(health.waiting_for_permit, 1);
    assert_eq!(health.pending, 1);
    assert_eq!(health.cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_permit_is_zero_without_a_limit() {
    let worker = Worker::new();
    for i in 0..5 {
        worker.submit(format!("job-{i}"), forever).await.unwrap();
    }
    settle().await;

    let health = worker.health();
    assert_eq!(health.running, 5);
    assert_eq!(health.waiting_for_permit, 0);
}

#[tokio::test(start_paused = true)]
async fn health_debug_names_each_status_count() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    settle().await;

    let debug = format!("{:?}", worker.health());

    for field in [
        "pending: 1",
        "running: 1",
        "completed: 0",
        "failed: 0",
        "cancelled: 0",
    ] {
        assert!(debug.contains(field), "{field:?} missing from {debug}");
    }
}
