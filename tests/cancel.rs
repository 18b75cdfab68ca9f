//! `cancel`: how `submit` and `submit_with_context` tasks stop, the cancel timeout, and cancelling
//! tasks that are unknown, finished or not started yet.

mod common;

use anyhow::anyhow;
use background_worker::{CancelError, TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs, Counter, Flag};
use tokio::time::Instant;

fn worker_with_cancel_timeout(seconds: u64) -> Worker {
    Worker::builder().cancel_timeout(secs(seconds)).build()
}

#[tokio::test(start_paused = true)]
async fn cancel_of_unknown_id_is_not_found() {
    let worker = Worker::new();
    worker.submit("other", forever).await.unwrap();

    let error = worker.cancel("missing").await.unwrap_err();
    assert_eq!(
        error,
        CancelError::NotFound {
            id: "missing".to_owned()
        }
    );
    assert_eq!(error.id(), "missing");
    assert_eq!(worker.get_task_status("other").await, Some(TaskStatus::Pending));
}

#[tokio::test(start_paused = true)]
async fn cancel_of_cleaned_up_id_is_not_found() {
    let worker = Worker::new();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    worker.cleanup_finished_tasks().await;

    assert_eq!(
        worker.cancel("job").await,
        Err(CancelError::NotFound { id: "job".to_owned() })
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_submitted_body_waiting_at_an_await_at_once() {
    let worker = worker_with_cancel_timeout(5);
    let reached_end = Flag::new();
    let end = reached_end.clone();
    worker
        .submit("job", move || async move {
            sleep_secs(60).await;
            end.set();
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));

    let start = Instant::now();
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(
        start.elapsed(),
        secs(0),
        "cancel waited instead of stopping the body at once"
    );

    sleep_secs(120).await;
    assert!(!reached_end.is_set());
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn cancel_drops_a_submitted_body_even_if_it_ignores_cancellation() {
    // A `submit` body never sees its token: it is raced against it and dropped at its `.await`.
    let worker = worker_with_cancel_timeout(5);
    let ticks = Counter::new();
    let body_ticks = ticks.clone();
    worker
        .submit("ticker", move || async move {
            loop {
                sleep_secs(1).await;
                body_ticks.bump();
            }
        })
        .await
        .unwrap();
    sleep_secs(3).await;

    let start = Instant::now();
    assert_eq!(worker.cancel("ticker").await, Ok(TaskStatus::Cancelled));
    assert_eq!(
        start.elapsed(),
        secs(0),
        "cancel waited for the timeout instead of dropping the body"
    );
    let at_cancel = ticks.get();
    sleep_secs(10).await;
    assert_eq!(ticks.get(), at_cancel);
}

#[tokio::test(start_paused = true)]
async fn cancel_gives_a_context_task_time_to_wind_down() {
    let worker = worker_with_cancel_timeout(5);
    let flushed = Flag::new();
    let flush = flushed.clone();
    worker
        .submit_with_context("export", move |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(2).await; // flush, checkpoint, release
            flush.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let start = Instant::now();
    assert_eq!(worker.cancel("export").await, Ok(TaskStatus::Cancelled));
    assert_eq!(
        start.elapsed(),
        secs(2),
        "cancel returns when the task stopped, not at the timeout"
    );
    assert!(flushed.is_set(), "the task was cut off while winding down");
}

#[tokio::test(start_paused = true)]
async fn context_task_sees_its_token_cancelled() {
    let worker = worker_with_cancel_timeout(5);
    let saw = Flag::new();
    let saw_it = saw.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            assert!(!ctx.is_cancelled());
            assert_eq!(ctx.id(), "job");
            ctx.token().cancelled().await;
            if ctx.is_cancelled() {
                saw_it.set();
            }
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert!(saw.is_set());
}

#[tokio::test(start_paused = true)]
async fn context_task_returning_ok_after_being_told_is_cancelled() {
    let worker = worker_with_cancel_timeout(5);
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn context_task_returning_err_after_being_told_is_cancelled() {
    let worker = worker_with_cancel_timeout(5);
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(1).await;
            Err(anyhow!("interrupted while writing the checkpoint"))
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn context_task_late_result_after_being_told_is_cancelled() {
    // The body never looks at its token; it just happens to finish within the timeout.
    let worker = worker_with_cancel_timeout(5);
    let finished = Flag::new();
    let done = finished.clone();
    worker
        .submit_with_context("job", move |_ctx| async move {
            sleep_secs(3).await;
            done.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let start = Instant::now();
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(start.elapsed(), secs(3));
    assert!(finished.is_set());
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn context_task_still_running_at_the_cancel_timeout_is_aborted_and_cancelled() {
    let worker = worker_with_cancel_timeout(2);
    let reached_end = Flag::new();
    let end = reached_end.clone();
    worker
        .submit_with_context("stubborn", move |_ctx| async move {
            sleep_secs(60).await; // ignores its token
            end.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let start = Instant::now();
    assert_eq!(worker.cancel("stubborn").await, Ok(TaskStatus::Cancelled));
    assert_eq!(
        start.elapsed(),
        secs(2),
        "cancel waits exactly the cancel timeout"
    );

    sleep_secs(120).await;
    assert!(!reached_end.is_set(), "the body kept running after the abort");
    assert_eq!(
        worker.get_task_status("stubborn").await,
        Some(TaskStatus::Cancelled)
    );
    assert_eq!(worker.running_task_count().await, 0);
}

#[tokio::test(start_paused = true)]
async fn context_task_winding_down_past_the_timeout_is_aborted() {
    let worker = worker_with_cancel_timeout(2);
    let flushed = Flag::new();
    let flush = flushed.clone();
    worker
        .submit_with_context("slow", move |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(10).await;
            flush.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("slow").await, Ok(TaskStatus::Cancelled));
    sleep_secs(30).await;
    assert!(!flushed.is_set());
    assert_eq!(worker.get_task_status("slow").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn cancel_before_start_never_calls_the_closure() {
    let worker = Worker::new();
    let called = Flag::new();
    let call = called.clone();
    worker
        .submit("job", move || {
            call.set();
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    sleep_secs(10).await;
    assert!(!called.is_set());
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn cancel_before_start_never_calls_a_context_closure() {
    let worker = Worker::new();
    let called = Flag::new();
    let call = called.clone();
    worker
        .submit_with_context("job", move |_ctx| {
            call.set();
            async { Ok(()) }
        })
        .await
        .unwrap();

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    sleep_secs(10).await;
    assert!(!called.is_set());
}

#[tokio::test(start_paused = true)]
async fn cancel_of_a_task_waiting_for_a_permit_means_it_never_runs() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker
        .submit("blocker", || async {
            sleep_secs(5).await;
            Ok(())
        })
        .await
        .unwrap();
    let called = Flag::new();
    let call = called.clone();
    worker
        .submit("queued", move || {
            call.set();
            async { Ok(()) }
        })
        .await
        .unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("queued").await, Some(TaskStatus::Pending));

    let start = Instant::now();
    assert_eq!(worker.cancel("queued").await, Ok(TaskStatus::Cancelled));
    assert_eq!(start.elapsed(), secs(0));

    assert_eq!(worker.wait("blocker").await, Some(TaskStatus::Completed));
    sleep_secs(10).await;
    assert!(!called.is_set(), "a cancelled pending task started after all");
    assert_eq!(
        worker.get_task_status("queued").await,
        Some(TaskStatus::Cancelled)
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_of_a_completed_task_changes_nothing() {
    let worker = Worker::new();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Completed));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn cancel_of_a_failed_task_changes_nothing() {
    let worker = Worker::new();
    worker
        .submit("job", || async { Err(anyhow!("bad")) })
        .await
        .unwrap();
    let failed = TaskStatus::Failed("bad".to_owned());
    assert_eq!(worker.wait("job").await, Some(failed.clone()));

    let start = Instant::now();
    assert_eq!(worker.cancel("job").await, Ok(failed.clone()));
    assert_eq!(start.elapsed(), secs(0));
    assert_eq!(worker.get_task_status("job").await, Some(failed));
}

#[tokio::test(start_paused = true)]
async fn cancelling_twice_is_not_an_error() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();
    settle().await;

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn cancel_affects_only_that_task() {
    let worker = Worker::new();
    worker.submit("victim", forever).await.unwrap();
    worker
        .submit_with_context("bystander", |ctx| async move {
            sleep_secs(5).await;
            anyhow::ensure!(!ctx.is_cancelled(), "bystander was told to stop");
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("victim").await, Ok(TaskStatus::Cancelled));
    assert_eq!(
        worker.get_task_status("bystander").await,
        Some(TaskStatus::Running)
    );
    assert_eq!(worker.wait("bystander").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn concurrent_cancels_of_one_task_agree() {
    let worker = worker_with_cancel_timeout(3);
    worker
        .submit_with_context("job", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let other = worker.clone();
    let (a, b) = tokio::join!(worker.cancel("job"), other.cancel("job"));
    assert_eq!(a, Ok(TaskStatus::Cancelled));
    assert_eq!(b, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
}
