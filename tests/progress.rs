//! `TaskContext::set_progress`: what a running task reports about itself, as seen through
//! `task_info`.

mod common;

use background_worker::{Progress, TaskContext, TaskStatus, Worker};
use common::{forever, settle, sleep_secs};
use tokio::sync::oneshot;

/// The latest progress of `id`, which must be tracked.
fn progress_of(worker: &Worker, id: &str) -> Option<Progress> {
    worker.task_info(id).expect("task is tracked").progress
}

/// Submits a task that reports `progress` and then waits forever.
async fn submit_reporting(worker: &Worker, id: &str, progress: Progress) {
    worker
        .submit_with_context(id, move |ctx| async move {
            ctx.set_progress(progress);
            forever().await
        })
        .await
        .unwrap();
    settle().await;
}

/// Submits a task that hands its context out, then runs until `stop` fires (or forever).
async fn submit_leaking_context(
    worker: &Worker,
    id: &str,
    stop: Option<oneshot::Receiver<()>>,
) -> TaskContext {
    let (tx, rx) = oneshot::channel();
    worker
        .submit_with_context(id, move |ctx| async move {
            tx.send(ctx).unwrap();
            match stop {
                Some(stop) => {
                    let _ = stop.await;
                    Ok(())
                }
                None => forever().await,
            }
        })
        .await
        .unwrap();
    rx.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_fraction_is_visible_through_task_info() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.set_progress(0.5);
            forever().await
        })
        .await
        .unwrap();
    settle().await;

    let progress = progress_of(&worker, "job").expect("progress was reported");

    assert_eq!(progress.fraction, Some(0.5));
    assert_eq!(progress.done, None);
    assert_eq!(progress.total, None);
    assert_eq!(progress.message, None);
}

#[tokio::test(start_paused = true)]
async fn a_counter_reports_done_total_and_their_fraction() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.set_progress((250, 1_000));
            forever().await
        })
        .await
        .unwrap();
    settle().await;

    let progress = progress_of(&worker, "job").unwrap();

    assert_eq!(progress.done, Some(250));
    assert_eq!(progress.total, Some(1_000));
    assert_eq!(progress.fraction, Some(0.25));
}

#[tokio::test(start_paused = true)]
async fn a_counter_with_a_message_reports_both() {
    let worker = Worker::new();
    submit_reporting(
        &worker,
        "job",
        Progress::counter(3, 7).with_message("uploading part 3 of 7"),
    )
    .await;

    let progress = progress_of(&worker, "job").unwrap();

    assert_eq!(progress.done, Some(3));
    assert_eq!(progress.total, Some(7));
    assert_eq!(progress.message.as_deref(), Some("uploading part 3 of 7"));
}

#[tokio::test(start_paused = true)]
async fn a_message_alone_has_no_measure() {
    let worker = Worker::new();
    submit_reporting(&worker, "job", Progress::message("warming caches")).await;

    let progress = progress_of(&worker, "job").unwrap();

    assert_eq!(progress.message.as_deref(), Some("warming caches"));
    assert_eq!(progress.fraction, None);
    assert_eq!(progress.done, None);
}

#[test]
fn a_fraction_outside_zero_to_one_is_clamped() {
    assert_eq!(Progress::from(1.5).fraction, Some(1.0));
    assert_eq!(Progress::from(-0.25).fraction, Some(0.0));
    assert_eq!(Progress::from(f64::NAN).fraction, Some(0.0));
    assert_eq!(Progress::counter(12, 10).fraction, Some(1.0));
}

#[test]
fn a_counter_with_zero_total_has_no_fraction() {
    let progress = Progress::counter(0, 0);

    assert_eq!(progress.fraction, None);
    assert_eq!(progress.done, Some(0));
    assert_eq!(progress.total, Some(0));
}

#[tokio::test(start_paused = true)]
async fn the_latest_report_wins() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            for step in 1..=4 {
                ctx.set_progress(Progress::counter(step, 4).with_message(format!("step {step}")));
                sleep_secs(2).await;
            }
            forever().await
        })
        .await
        .unwrap();

    sleep_secs(3).await; // steps are reported at 0, 2, 4 and 6 seconds
    assert_eq!(progress_of(&worker, "job").unwrap().done, Some(2));

    sleep_secs(10).await;
    let progress = progress_of(&worker, "job").unwrap();
    assert_eq!(progress.done, Some(4));
    assert_eq!(progress.message.as_deref(), Some("step 4"));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_never_reports_has_no_progress() {
    let worker = Worker::new();
    worker.submit_with_context("job", |_ctx| forever()).await.unwrap();
    settle().await;

    assert_eq!(progress_of(&worker, "job"), None);
}

#[tokio::test(start_paused = true)]
async fn a_plain_submit_has_no_progress() {
    let worker = Worker::new();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    assert_eq!(progress_of(&worker, "job"), None);
}

#[tokio::test(start_paused = true)]
async fn progress_stays_visible_after_the_task_completes() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.set_progress(Progress::counter(10, 10).with_message("done"));
            Ok(())
        })
        .await
        .unwrap();
    worker.wait("job").await;

    let progress = progress_of(&worker, "job").unwrap();
    assert_eq!(progress.done, Some(10));
    assert_eq!(progress.message.as_deref(), Some("done"));
}

#[tokio::test(start_paused = true)]
async fn progress_stops_changing_once_the_task_completed() {
    let worker = Worker::new();
    let (stop, stopped) = oneshot::channel();
    let ctx = submit_leaking_context(&worker, "job", Some(stopped)).await;
    ctx.set_progress(0.3);
    stop.send(()).unwrap();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));

    ctx.set_progress(0.9);

    assert_eq!(progress_of(&worker, "job").unwrap().fraction, Some(0.3));
}

#[tokio::test(start_paused = true)]
async fn progress_stops_changing_once_the_task_was_cancelled() {
    let worker = Worker::new();
    let ctx = submit_leaking_context(&worker, "job", None).await;
    ctx.set_progress(0.3);
    // The body ignores its token: the cancel timeout runs out and the task is aborted.
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));

    ctx.set_progress(0.9);

    assert_eq!(progress_of(&worker, "job").unwrap().fraction, Some(0.3));
}

#[tokio::test(start_paused = true)]
async fn progress_of_one_task_does_not_show_on_another() {
    let worker = Worker::new();
    submit_reporting(&worker, "reporting", Progress::fraction(0.7)).await;
    worker
        .submit_with_context("silent", |_ctx| forever())
        .await
        .unwrap();
    settle().await;

    assert_eq!(progress_of(&worker, "reporting").unwrap().fraction, Some(0.7));
    assert_eq!(progress_of(&worker, "silent"), None);
}

#[tokio::test(start_paused = true)]
async fn a_resubmitted_id_starts_without_the_old_progress() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.set_progress(1.0);
            Ok(())
        })
        .await
        .unwrap();
    worker.wait("job").await;

    worker.submit_with_context("job", |_ctx| forever()).await.unwrap();
    settle().await;

    assert_eq!(worker.task_info("job").unwrap().status, TaskStatus::Running);
    assert_eq!(progress_of(&worker, "job"), None);
}
