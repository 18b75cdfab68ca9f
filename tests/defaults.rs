//! Defaults: 5 second cancel and shutdown timeouts, no concurrency limit.

mod common;

use background_worker::{TaskOutcome, TaskStatus, Worker, DEFAULT_TIMEOUT};
use common::{secs, settle, sleep_secs};
use tokio::time::Instant;

async fn submit_stubborn(worker: &Worker, id: &str) {
    worker
        .submit_with_context(id, |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
}

#[test]
fn default_timeout_is_five_seconds() {
    assert_eq!(DEFAULT_TIMEOUT, secs(5));
}

#[tokio::test(start_paused = true)]
async fn default_cancel_timeout_is_five_seconds() {
    let worker = Worker::new();
    submit_stubborn(&worker, "stubborn").await;
    settle().await;

    let start = Instant::now();
    assert_eq!(worker.cancel("stubborn").await, Ok(TaskStatus::Cancelled));
    assert_eq!(start.elapsed(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn default_shutdown_timeout_is_five_seconds() {
    let worker = Worker::default();
    submit_stubborn(&worker, "stubborn").await;
    settle().await;

    let start = Instant::now();
    let report = worker.shutdown().await;
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(report.outcome("stubborn"), Some(&TaskOutcome::Aborted));
}

#[tokio::test(start_paused = true)]
async fn builder_without_settings_uses_the_default_timeouts() {
    let worker = Worker::builder().build();
    submit_stubborn(&worker, "a").await;
    submit_stubborn(&worker, "b").await;
    settle().await;

    let start = Instant::now();
    worker.cancel("a").await.unwrap();
    assert_eq!(start.elapsed(), secs(5));
    worker.shutdown().await;
    assert_eq!(start.elapsed(), secs(10));
}

#[tokio::test(start_paused = true)]
async fn default_worker_has_no_concurrency_limit() {
    let worker = Worker::default();
    for i in 0..300 {
        worker
            .submit(format!("job-{i}"), || async {
                sleep_secs(10).await;
                Ok(())
            })
            .await
            .unwrap();
    }
    sleep_secs(1).await;

    assert_eq!(worker.running_task_count().await, 300);
}
