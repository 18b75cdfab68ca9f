//! Queries: `get_task_status`, `task_count`, `running_task_count`, `has_task` and `wait`.

mod common;

use anyhow::anyhow;
use background_worker::{TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn status_is_none_for_an_id_never_submitted() {
    let worker = Worker::new();
    worker.submit("known", forever).await.unwrap();

    assert_eq!(worker.get_task_status("unknown").await, None);
    assert!(!worker.has_task("unknown"));
}

#[tokio::test(start_paused = true)]
async fn status_is_none_for_a_cleaned_up_id() {
    let worker = Worker::new();
    worker.submit("done", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("done").await, Some(TaskStatus::Completed));

    worker.cleanup_finished_tasks().await;

    assert_eq!(worker.get_task_status("done").await, None);
    assert!(!worker.has_task("done"));
}

#[tokio::test(start_paused = true)]
async fn task_count_counts_every_tracked_entry_whatever_its_status() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("completed", || async { Ok(()) }).await.unwrap();
    worker
        .submit("failed", || async { Err(anyhow!("no")) })
        .await
        .unwrap();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    sleep_secs(1).await;

    assert_eq!(
        worker.get_task_status("completed").await,
        Some(TaskStatus::Completed)
    );
    assert_eq!(worker.get_task_status("running").await, Some(TaskStatus::Running));
    assert_eq!(worker.get_task_status("pending").await, Some(TaskStatus::Pending));
    assert_eq!(worker.task_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn running_task_count_counts_only_running_bodies() {
    let worker = Worker::builder().max_concurrent(2).build();
    assert_eq!(worker.running_task_count().await, 0);
    for id in ["a", "b", "c"] {
        worker
            .submit(id, || async {
                sleep_secs(10).await;
                Ok(())
            })
            .await
            .unwrap();
    }
    worker.submit("done", || async { Ok(()) }).await.unwrap();
    // Pending tasks are not running.
    assert_eq!(worker.running_task_count().await, 0);

    sleep_secs(1).await;
    assert_eq!(worker.running_task_count().await, 2); // "c" and "done" wait for a permit

    sleep_secs(10).await;
    assert_eq!(worker.running_task_count().await, 1); // only "c" now
    sleep_secs(10).await;
    assert_eq!(worker.running_task_count().await, 0);
    assert_eq!(worker.task_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn has_task_is_true_for_every_tracked_status() {
    let worker = Worker::new();
    worker.submit("pending", forever).await.unwrap();
    assert!(worker.has_task("pending"));

    worker
        .submit("failed", || async { Err(anyhow!("no")) })
        .await
        .unwrap();
    worker.submit("cancelled", forever).await.unwrap();
    settle().await;
    worker.cancel("cancelled").await.unwrap();

    assert!(worker.has_task("pending")); // running by now
    assert!(worker.has_task("failed"));
    assert!(worker.has_task("cancelled"));
    assert!(!worker.has_task("other"));
}

#[tokio::test(start_paused = true)]
async fn wait_resolves_with_completed() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(3).await;
            Ok(())
        })
        .await
        .unwrap();

    let start = Instant::now();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert_eq!(start.elapsed(), secs(3));
}

#[tokio::test(start_paused = true)]
async fn wait_resolves_with_failed() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(3).await;
            Err(anyhow!("disk full"))
        })
        .await
        .unwrap();

    assert_eq!(
        worker.wait("job").await,
        Some(TaskStatus::Failed("disk full".to_owned()))
    );
}

#[tokio::test(start_paused = true)]
async fn wait_resolves_with_cancelled_when_another_caller_cancels() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();

    let canceller = worker.clone();
    tokio::spawn(async move {
        sleep_secs(2).await;
        canceller.cancel("job").await
    });

    let start = Instant::now();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Cancelled));
    assert_eq!(start.elapsed(), secs(2));
}

#[tokio::test(start_paused = true)]
async fn wait_resolves_when_shutdown_stops_the_task() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();

    let stopper = worker.clone();
    tokio::spawn(async move {
        sleep_secs(2).await;
        stopper.shutdown().await
    });

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn wait_returns_at_once_for_a_finished_task() {
    let worker = Worker::new();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    settle().await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Completed));

    let start = Instant::now();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert_eq!(start.elapsed(), secs(0));
}

#[tokio::test(start_paused = true)]
async fn wait_returns_none_for_an_unknown_id() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();

    assert_eq!(worker.wait("unknown").await, None);
}

#[tokio::test(start_paused = true)]
async fn several_waiters_all_get_the_terminal_status() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(2).await;
            Err(anyhow!("nope"))
        })
        .await
        .unwrap();

    let other = worker.clone();
    let (a, b, c) = tokio::join!(worker.wait("job"), worker.wait("job"), other.wait("job"));
    let failed = Some(TaskStatus::Failed("nope".to_owned()));
    assert_eq!((a, b, c), (failed.clone(), failed.clone(), failed));
}

#[tokio::test(start_paused = true)]
async fn queries_see_the_same_registry_from_every_clone() {
    let worker = Worker::new();
    let clone = worker.clone();
    clone.submit("job", forever).await.unwrap();

    assert!(worker.has_task("job"));
    assert_eq!(worker.task_count(), 1);
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));
}

#[test]
fn only_completed_failed_and_cancelled_are_terminal() {
    assert!(!TaskStatus::Pending.is_terminal());
    assert!(!TaskStatus::Running.is_terminal());
    assert!(TaskStatus::Completed.is_terminal());
    assert!(TaskStatus::Failed("x".to_owned()).is_terminal());
    assert!(TaskStatus::Cancelled.is_terminal());
}

#[test]
fn status_displays_its_name_and_failure_message() {
    assert_eq!(TaskStatus::Pending.to_string(), "pending");
    assert_eq!(TaskStatus::Running.to_string(), "running");
    assert_eq!(TaskStatus::Completed.to_string(), "completed");
    assert_eq!(
        TaskStatus::Failed("disk full".to_owned()).to_string(),
        "failed: disk full"
    );
    assert_eq!(TaskStatus::Cancelled.to_string(), "cancelled");
}
