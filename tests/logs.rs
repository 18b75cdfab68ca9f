//! What the worker logs: a WARN with `task_id` for a panic and for each task a shutdown had to
//! abort, INFO when the shutdown starts and ends.
//!
//! These tests live in their own binary, and every test here captures logs: a thread-local
//! subscriber next to tests that log without one can miss events, because tracing caches
//! per-callsite interest across threads.

mod common;

use background_worker::{TaskStatus, Worker};
use common::{capture_logs, forever, secs, settle, sleep_secs};
use tracing::Level;

#[tokio::test(start_paused = true)]
async fn panic_is_logged_at_warn_with_the_task_id() {
    let (logs, _guard) = capture_logs();
    let worker = Worker::new();
    worker
        .submit("boom", || async { panic!("bad input") })
        .await
        .unwrap();
    worker.submit("fine", || async { Ok(()) }).await.unwrap();
    worker.wait("boom").await;
    worker.wait("fine").await;

    let warned: Vec<String> = logs
        .events()
        .into_iter()
        .filter(|event| event.level == Level::WARN)
        .filter_map(|event| event.field("task_id").map(str::to_owned))
        .collect();
    assert_eq!(warned, ["boom"]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_logs_info_at_start_and_end_and_a_warning_per_aborted_task() {
    let (logs, _guard) = capture_logs();
    let worker = Worker::builder().shutdown_timeout(secs(1)).build();
    for id in ["stubborn-a", "stubborn-b"] {
        worker
            .submit_with_context(id, |_ctx| async {
                sleep_secs(3600).await;
                Ok(())
            })
            .await
            .unwrap();
    }
    worker.submit("plain", forever).await.unwrap();
    settle().await;
    let before = logs.events().len();

    let report = worker.shutdown().await;
    assert_eq!(report.aborted(), 2);

    let during = &logs.events()[before..];
    let mut warned: Vec<&str> = during
        .iter()
        .filter(|event| event.level == Level::WARN)
        .filter_map(|event| event.field("task_id"))
        .collect();
    warned.sort_unstable();
    assert_eq!(warned, ["stubborn-a", "stubborn-b"]);
    let infos = during.iter().filter(|event| event.level == Level::INFO).count();
    assert!(
        infos >= 2,
        "expected INFO when stopping and when stopped, got {during:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_timeout_is_logged_at_warn_with_the_task_id() {
    let (logs, _guard) = capture_logs();
    let worker = Worker::builder().cancel_timeout(secs(1)).build();
    worker
        .submit_with_context("stubborn", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("stubborn").await, Ok(TaskStatus::Cancelled));

    let warned: Vec<String> = logs
        .events()
        .into_iter()
        .filter(|event| event.level == Level::WARN)
        .filter_map(|event| event.field("task_id").map(str::to_owned))
        .collect();
    assert_eq!(warned, ["stubborn"]);
}
