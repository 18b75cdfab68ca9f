//! `shutdown`: stop accepting, cancel everything, drain with one timeout for all tasks, report.

mod common;

use anyhow::anyhow;
use background_worker::{SubmitError, TaskOutcome, TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs, within, worker_with_timeouts, Counter, Flag};
use tokio::time::Instant;

fn worker_with_shutdown_timeout(seconds: u64) -> Worker {
    Worker::builder().shutdown_timeout(secs(seconds)).build()
}

/// Submits a `submit_with_context` task that ignores its token and would run for an hour.
async fn submit_stubborn(worker: &Worker, id: &str) {
    worker
        .submit_with_context(id, |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_no_tasks_returns_an_empty_report_at_once() {
    let worker = Worker::new();

    let start = Instant::now();
    let report = worker.shutdown().await;

    assert_eq!(start.elapsed(), secs(0));
    assert_eq!(report.total(), 0);
    assert!(report.tasks().is_empty());
    assert!(worker.is_shutting_down());
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_submitted_bodies_at_their_await_at_once() {
    let worker = worker_with_shutdown_timeout(5);
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
    settle().await;

    let start = Instant::now();
    let report = worker.shutdown().await;

    assert_eq!(start.elapsed(), secs(0));
    assert_eq!(report.outcome("job"), Some(&TaskOutcome::Cancelled));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Cancelled));
    sleep_secs(120).await;
    assert!(!reached_end.is_set());
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_context_tasks_time_to_wind_down() {
    let worker = worker_with_shutdown_timeout(5);
    let flushed = Flag::new();
    let flush = flushed.clone();
    worker
        .submit_with_context("export", move |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(2).await; // flush
            flush.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let start = Instant::now();
    let report = worker.shutdown().await;

    assert_eq!(
        start.elapsed(),
        secs(2),
        "the drain returns when the last task stopped"
    );
    assert!(flushed.is_set());
    assert_eq!(report.outcome("export"), Some(&TaskOutcome::Cancelled));
    assert_eq!(
        worker.get_task_status("export").await,
        Some(TaskStatus::Cancelled)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_every_task_token() {
    let worker = worker_with_shutdown_timeout(5);
    let told = Counter::new();
    for id in ["a", "b", "c"] {
        let told = told.clone();
        worker
            .submit_with_context(id, move |ctx| async move {
                ctx.cancelled().await;
                told.bump();
                Ok(())
            })
            .await
            .unwrap();
    }
    settle().await;

    let report = worker.shutdown().await;
    assert_eq!(told.get(), 3);
    assert_eq!(report.cancelled(), 3);
}

#[tokio::test(start_paused = true)]
async fn task_past_the_shutdown_timeout_is_aborted_reported_aborted_and_cancelled() {
    let worker = worker_with_shutdown_timeout(3);
    let reached_end = Flag::new();
    let end = reached_end.clone();
    worker
        .submit_with_context("stubborn", move |_ctx| async move {
            sleep_secs(60).await;
            end.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let start = Instant::now();
    let report = worker.shutdown().await;

    assert_eq!(start.elapsed(), secs(3));
    assert_eq!(report.outcome("stubborn"), Some(&TaskOutcome::Aborted));
    assert_eq!(report.aborted(), 1);
    assert_eq!(
        worker.get_task_status("stubborn").await,
        Some(TaskStatus::Cancelled)
    );
    sleep_secs(120).await;
    assert!(!reached_end.is_set(), "the aborted body kept running");
}

#[tokio::test(start_paused = true)]
async fn thousand_tasks_ignoring_cancellation_take_about_one_timeout() {
    let worker = worker_with_shutdown_timeout(5);
    for i in 0..1000 {
        submit_stubborn(&worker, &format!("task-{i:04}")).await;
    }
    sleep_secs(1).await; // let all of them start

    assert_eq!(worker.running_task_count().await, 1000);

    let start = Instant::now();
    let report = worker.shutdown().await;
    let elapsed = start.elapsed();

    assert!(
        elapsed >= secs(5) && elapsed < secs(6),
        "shutdown took {elapsed:?} of paused time, expected one 5 s timeout"
    );
    assert!(report.elapsed() >= secs(5) && report.elapsed() < secs(6));
    assert_eq!(report.total(), 1000);
    assert_eq!(report.aborted(), 1000);
    assert_eq!(worker.running_task_count().await, 0);
}

#[tokio::test(start_paused = true)]
async fn pending_tasks_never_start_after_shutdown() {
    let worker = Worker::new();
    let called = Counter::new();
    for id in ["a", "b", "c"] {
        let called = called.clone();
        worker
            .submit(id, move || {
                called.bump();
                async { Ok(()) }
            })
            .await
            .unwrap();
    }
    // No yield since the submits: all three are still pending.

    let report = worker.shutdown().await;
    sleep_secs(10).await;

    assert_eq!(called.get(), 0, "a pending task started after shutdown");
    assert_eq!(report.total(), 3);
    assert_eq!(report.cancelled(), 3);
    for id in ["a", "b", "c"] {
        assert_eq!(worker.get_task_status(id).await, Some(TaskStatus::Cancelled));
    }
}

#[tokio::test(start_paused = true)]
async fn tasks_waiting_for_a_permit_never_start_after_shutdown() {
    let worker = Worker::builder()
        .max_concurrent(1)
        .shutdown_timeout(secs(5))
        .build();
    worker
        .submit_with_context("holder", |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(1).await; // releases its permit only after a wind-down
            Ok(())
        })
        .await
        .unwrap();
    let called = Counter::new();
    for id in ["q1", "q2"] {
        let called = called.clone();
        worker
            .submit_with_context(id, move |_ctx| {
                called.bump();
                async { Ok(()) }
            })
            .await
            .unwrap();
    }
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("q1").await, Some(TaskStatus::Pending));

    let report = worker.shutdown().await;
    sleep_secs(10).await;

    assert_eq!(
        called.get(),
        0,
        "a task waiting for a permit started after shutdown"
    );
    assert_eq!(report.outcome("q1"), Some(&TaskOutcome::Cancelled));
    assert_eq!(report.outcome("q2"), Some(&TaskOutcome::Cancelled));
    assert_eq!(worker.get_task_status("q2").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn when_shutdown_returns_every_task_is_terminal_and_no_body_runs() {
    let worker = Worker::builder()
        .max_concurrent(4)
        .shutdown_timeout(secs(3))
        .build();
    let ticks = Counter::new();
    for i in 0..6 {
        let ticks = ticks.clone();
        // Tickers that ignore their token: they run until aborted.
        worker
            .submit_with_context(format!("ticker-{i}"), move |_ctx| async move {
                loop {
                    sleep_secs(1).await;
                    ticks.bump();
                }
            })
            .await
            .unwrap();
    }
    for i in 0..4 {
        let ticks = ticks.clone();
        worker
            .submit(format!("plain-{i}"), move || async move {
                loop {
                    sleep_secs(1).await;
                    ticks.bump();
                }
            })
            .await
            .unwrap();
    }
    sleep_secs(5).await;
    assert!(ticks.get() > 0);

    within(60, worker.shutdown()).await;

    let at_shutdown = ticks.get();
    assert_eq!(worker.running_task_count().await, 0);
    for i in 0..6 {
        let status = worker.get_task_status(&format!("ticker-{i}")).await.unwrap();
        assert!(status.is_terminal(), "ticker-{i} is {status}");
    }
    for i in 0..4 {
        let status = worker.get_task_status(&format!("plain-{i}")).await.unwrap();
        assert!(status.is_terminal(), "plain-{i} is {status}");
    }
    sleep_secs(60).await;
    assert_eq!(
        ticks.get(),
        at_shutdown,
        "a body kept running after shutdown returned"
    );
}

#[tokio::test(start_paused = true)]
async fn report_lists_each_task_outcome_and_the_counts() {
    let worker = worker_with_timeouts(5, 2);
    // Finished before the shutdown: not in the report.
    worker.submit("done", || async { Ok(()) }).await.unwrap();
    worker
        .submit("broken", || async { Err(anyhow!("no")) })
        .await
        .unwrap();
    settle().await;
    // Stop within the timeout: cancelled.
    worker.submit("plain", forever).await.unwrap();
    worker
        .submit_with_context("polite", |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(1).await;
            Ok(())
        })
        .await
        .unwrap();
    worker
        .submit_with_context("grumpy", |ctx| async move {
            ctx.cancelled().await;
            Err(anyhow!("told to stop"))
        })
        .await
        .unwrap();
    // Still running at the timeout: aborted.
    submit_stubborn(&worker, "stubborn-1").await;
    submit_stubborn(&worker, "stubborn-2").await;
    settle().await;

    let report = worker.shutdown().await;

    let ids: Vec<&str> = report.tasks().iter().map(|task| task.id.as_str()).collect();
    assert_eq!(ids, ["grumpy", "plain", "polite", "stubborn-1", "stubborn-2"]);
    assert_eq!(report.outcome("plain"), Some(&TaskOutcome::Cancelled));
    assert_eq!(report.outcome("polite"), Some(&TaskOutcome::Cancelled));
    assert_eq!(report.outcome("grumpy"), Some(&TaskOutcome::Cancelled));
    assert_eq!(report.outcome("stubborn-1"), Some(&TaskOutcome::Aborted));
    assert_eq!(report.outcome("done"), None);
    assert_eq!(report.total(), 5);
    assert_eq!(report.completed(), 0);
    assert_eq!(report.failed(), 0);
    assert_eq!(report.cancelled(), 3);
    assert_eq!(report.aborted(), 2);
    assert_eq!(report.elapsed(), secs(2));
    // The tasks that finished earlier keep their own status.
    assert_eq!(worker.get_task_status("done").await, Some(TaskStatus::Completed));
    assert_eq!(
        worker.get_task_status("broken").await,
        Some(TaskStatus::Failed("no".to_owned()))
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_idempotent() {
    let worker = worker_with_shutdown_timeout(2);
    submit_stubborn(&worker, "stubborn").await;
    worker.submit("plain", forever).await.unwrap();
    settle().await;

    let first = worker.shutdown().await;
    let start = Instant::now();
    let second = worker.shutdown().await;

    assert_eq!(start.elapsed(), secs(0), "a second shutdown drains nothing again");
    assert_eq!(first, second);
    assert_eq!(first.total(), 2);

    sleep_secs(60).await;
    assert_eq!(worker.shutdown().await, first);
}

#[tokio::test(start_paused = true)]
async fn concurrent_shutdowns_from_clones_all_get_the_same_report() {
    let worker = worker_with_shutdown_timeout(3);
    submit_stubborn(&worker, "stubborn").await;
    worker.submit("plain", forever).await.unwrap();
    settle().await;

    // Three callers at once, and two that join while the drain is under way.
    let start = Instant::now();
    let callers: Vec<_> = [0, 0, 0, 1, 2]
        .into_iter()
        .map(|delay| {
            let clone = worker.clone();
            tokio::spawn(async move {
                sleep_secs(delay).await;
                (clone.shutdown().await, Instant::now())
            })
        })
        .collect();
    let mut reports = Vec::new();
    for caller in callers {
        let (report, finished) = caller.await.unwrap();
        // Every caller waits for the one drain, none returns early or starts another.
        assert_eq!(finished - start, secs(3));
        reports.push(report);
    }

    assert_eq!(reports[0].total(), 2);
    assert_eq!(reports[0].outcome("stubborn"), Some(&TaskOutcome::Aborted));
    assert_eq!(reports[0].outcome("plain"), Some(&TaskOutcome::Cancelled));
    assert!(reports.iter().all(|report| *report == reports[0]));
    assert_eq!(worker.shutdown().await, reports[0]);
}

#[tokio::test(start_paused = true)]
async fn submit_racing_shutdown_is_either_refused_or_drained() {
    let worker = worker_with_shutdown_timeout(2);
    let submitter = worker.clone();
    let submitting = tokio::spawn(async move {
        let (mut accepted, mut refused) = (Vec::new(), None);
        for i in 0..1000 {
            let id = format!("t{i:03}");
            let submitted = if i % 2 == 0 {
                submitter.submit(id.clone(), forever).await
            } else {
                submitter
                    .submit_with_context(id.clone(), |_ctx| async {
                        sleep_secs(3600).await;
                        Ok(())
                    })
                    .await
            };
            match submitted {
                Ok(()) => accepted.push(id),
                Err(error) => {
                    refused = Some((id, error));
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        (accepted, refused)
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }

    let report = worker.shutdown().await;
    let (accepted, refused) = submitting.await.unwrap();

    assert!(!accepted.is_empty());
    let (refused_id, error) = refused.expect("every submit was accepted, even after shutdown began");
    assert_eq!(
        error,
        SubmitError::ShuttingDown {
            id: refused_id.clone()
        }
    );
    assert!(!worker.has_task(&refused_id));
    for id in &accepted {
        let status = worker.get_task_status(id).await.unwrap();
        assert_eq!(status, TaskStatus::Cancelled, "{id}");
        assert!(report.outcome(id).is_some(), "{id} was accepted but not drained");
    }
    assert_eq!(report.total(), accepted.len());
}
