//! Submitting tasks: registration, the status a task moves through, how its result is recorded,
//! and which submissions are refused.

mod common;

use anyhow::{anyhow, Context as _};
use background_worker::{SubmitError, TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs, Flag};

#[tokio::test(start_paused = true)]
async fn submitted_task_is_registered_as_pending_before_it_runs() {
    let worker = Worker::new();
    let ran = Flag::new();
    let body_ran = ran.clone();

    worker
        .submit("job", move || async move {
            body_ran.set();
            Ok(())
        })
        .await
        .unwrap();

    // Nothing has yielded to the runtime yet, so the task cannot have started: it is visible
    // anyway, as `Pending`.
    assert!(!ran.is_set());
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));
    assert!(worker.has_task("job"));
    assert_eq!(worker.task_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn task_turns_running_when_its_body_starts() {
    let worker = Worker::new();
    let seen_inside = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (me, seen) = (worker.clone(), seen_inside.clone());

    worker
        .submit("job", move || async move {
            *seen.lock().unwrap() = me.get_task_status("job").await;
            sleep_secs(10).await;
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(1).await;

    assert_eq!(*seen_inside.lock().unwrap(), Some(TaskStatus::Running));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));
    assert_eq!(worker.running_task_count().await, 1);
}

#[tokio::test(start_paused = true)]
async fn context_task_turns_running_when_its_body_starts() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |_ctx| async {
            sleep_secs(10).await;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));

    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn body_returning_ok_ends_completed() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(2).await;
            Ok(())
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn task_goes_pending_running_completed_and_stays_completed() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(2).await;
            Ok(())
        })
        .await
        .unwrap();

    let mut seen = vec![worker.get_task_status("job").await.unwrap()];
    for _ in 0..5 {
        sleep_secs(1).await;
        let status = worker.get_task_status("job").await.unwrap();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
    }
    assert_eq!(
        seen,
        [TaskStatus::Pending, TaskStatus::Running, TaskStatus::Completed]
    );

    // A terminal status never changes: not by time, a cancel, or a shutdown.
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Completed));
    worker.shutdown().await;
    sleep_secs(60).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn body_returning_err_ends_failed_with_exactly_its_message() {
    let worker = Worker::new();
    worker
        .submit("job", || async { Err(anyhow!("Something went wrong")) })
        .await
        .unwrap();

    assert_eq!(
        worker.wait("job").await,
        Some(TaskStatus::Failed("Something went wrong".to_owned()))
    );
}

#[tokio::test(start_paused = true)]
async fn failure_message_includes_the_error_causes() {
    let worker = Worker::new();
    worker
        .submit("sync", || async {
            let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
            Err(anyhow::Error::new(io))
                .context("fetching page 3")
                .context("sync failed")
        })
        .await
        .unwrap();

    assert_eq!(
        worker.wait("sync").await,
        Some(TaskStatus::Failed(
            "sync failed: fetching page 3: connection refused".to_owned()
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn context_task_returning_err_ends_failed_with_its_message() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            sleep_secs(1).await;
            Err(anyhow!("task {} gave up", ctx.id()))
        })
        .await
        .unwrap();

    assert_eq!(
        worker.wait("job").await,
        Some(TaskStatus::Failed("task job gave up".to_owned()))
    );
}

#[tokio::test(start_paused = true)]
async fn failed_status_never_changes_afterwards() {
    let worker = Worker::new();
    worker
        .submit("job", || async { Err(anyhow!("boom")) })
        .await
        .unwrap();
    let failed = Some(TaskStatus::Failed("boom".to_owned()));
    assert_eq!(worker.wait("job").await, failed);

    assert_eq!(worker.cancel("job").await.ok(), failed);
    sleep_secs(30).await;
    worker.shutdown().await;
    assert_eq!(worker.get_task_status("job").await, failed);
}

#[tokio::test(start_paused = true)]
async fn duplicate_id_of_pending_task_is_refused_and_closure_dropped() {
    let worker = Worker::new();
    let first = Flag::new();
    let second = Flag::new();
    let (f1, f2) = (first.clone(), second.clone());

    worker
        .submit("job", move || async move {
            f1.set();
            Ok(())
        })
        .await
        .unwrap();
    let refused = worker
        .submit("job", move || async move {
            f2.set();
            Ok(())
        })
        .await;

    assert_eq!(refused, Err(SubmitError::DuplicateId { id: "job".to_owned() }));
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    sleep_secs(5).await;
    assert!(first.is_set());
    assert!(!second.is_set());
    assert_eq!(worker.task_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn duplicate_id_of_running_task_is_refused_and_running_task_untouched() {
    let worker = Worker::new();
    let finished = Flag::new();
    let intruder = Flag::new();
    let (done, other) = (finished.clone(), intruder.clone());

    worker
        .submit_with_context("job", move |ctx| async move {
            sleep_secs(5).await;
            assert!(
                !ctx.is_cancelled(),
                "the running task was cancelled by a refused submit"
            );
            done.set();
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));

    let refused = worker
        .submit_with_context("job", move |_ctx| async move {
            other.set();
            Ok(())
        })
        .await;
    assert_eq!(refused, Err(SubmitError::DuplicateId { id: "job".to_owned() }));
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert!(finished.is_set());
    assert!(!intruder.is_set());
}

#[tokio::test(start_paused = true)]
async fn terminal_id_is_replaced_by_a_new_task() {
    let worker = Worker::new();
    worker
        .submit("job", || async { Err(anyhow!("first try")) })
        .await
        .unwrap();
    assert_eq!(
        worker.wait("job").await,
        Some(TaskStatus::Failed("first try".to_owned()))
    );

    let second = Flag::new();
    let ran = second.clone();
    worker
        .submit("job", move || async move {
            sleep_secs(3).await;
            ran.set();
            Ok(())
        })
        .await
        .unwrap();

    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));
    assert_eq!(worker.task_count(), 1);
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert!(second.is_set());
}

#[tokio::test(start_paused = true)]
async fn cancelled_id_is_replaced_by_a_new_task() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));

    worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn finishing_old_task_never_overwrites_newer_task_with_same_id() {
    // The old task ignores its token, so `cancel` aborts it at the timeout and marks it
    // `Cancelled`; the aborted future is only dropped when the runtime next gets control, after
    // the id was already given to a new task.
    let worker = worker_with_cancel_timeout(2);
    worker
        .submit_with_context("job", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));

    worker
        .submit("job", || async {
            sleep_secs(10).await;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Pending));

    sleep_secs(5).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn aborted_old_task_never_overwrites_newer_task_after_cleanup() {
    // As above, but the old entry is cleaned up before the id is reused, so the new task's entry
    // is a fresh one: the dropped old task still must not touch it.
    let worker = worker_with_cancel_timeout(1);
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.cancelled().await;
            sleep_secs(3).await; // winds down for longer than the cancel timeout
            Err(anyhow!("old task failed while winding down"))
        })
        .await
        .unwrap();
    settle().await;
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.cleanup_finished_tasks().await, 1);

    worker
        .submit("job", || async {
            sleep_secs(10).await;
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(5).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn empty_id_is_refused_with_invalid_id() {
    let worker = Worker::new();
    let ran = Flag::new();
    let body_ran = ran.clone();

    let refused = worker
        .submit("", move || async move {
            body_ran.set();
            Ok(())
        })
        .await;
    let refused_ctx = worker.submit_with_context("", |_ctx| async { Ok(()) }).await;

    assert_eq!(refused, Err(SubmitError::InvalidId { id: String::new() }));
    assert_eq!(refused_ctx, Err(SubmitError::InvalidId { id: String::new() }));
    sleep_secs(1).await;
    assert!(!ran.is_set());
    assert_eq!(worker.task_count(), 0);
    assert_eq!(worker.get_task_status("").await, None);
}

#[tokio::test(start_paused = true)]
async fn submit_after_shutdown_is_refused_and_closure_not_run() {
    let worker = Worker::new();
    worker.shutdown().await;

    let called = Flag::new();
    let (c1, c2) = (called.clone(), called.clone());
    let refused = worker
        .submit("late", move || {
            c1.set();
            async { Ok(()) }
        })
        .await;
    let refused_ctx = worker
        .submit_with_context("late-ctx", move |_ctx| {
            c2.set();
            async { Ok(()) }
        })
        .await;

    assert_eq!(
        refused,
        Err(SubmitError::ShuttingDown {
            id: "late".to_owned()
        })
    );
    assert_eq!(
        refused_ctx,
        Err(SubmitError::ShuttingDown {
            id: "late-ctx".to_owned()
        })
    );
    sleep_secs(10).await;
    assert!(!called.is_set());
    assert!(!worker.has_task("late"));
    assert!(!worker.has_task("late-ctx"));
}

#[tokio::test(start_paused = true)]
async fn submit_is_refused_once_shutdown_has_begun_even_before_it_returns() {
    let worker = worker_with_timeouts_shutdown(5);
    worker
        .submit_with_context("slow", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let stopping = worker.clone();
    let shutdown = tokio::spawn(async move { stopping.shutdown().await });
    sleep_secs(1).await; // the drain is now waiting for "slow"
    assert!(!shutdown.is_finished());

    let refused = worker.submit("late", || async { Ok(()) }).await;
    assert_eq!(
        refused,
        Err(SubmitError::ShuttingDown {
            id: "late".to_owned()
        })
    );
    shutdown.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn submit_errors_carry_the_id() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();

    let duplicate = worker.submit("job", forever).await.unwrap_err();
    assert_eq!(duplicate.id(), "job");
    assert!(duplicate.to_string().contains("job"), "{duplicate}");

    worker.shutdown().await;
    let closed = worker.submit("other", forever).await.unwrap_err();
    assert_eq!(closed.id(), "other");
    assert!(closed.to_string().contains("other"), "{closed}");

    let invalid = worker.submit("", forever).await.unwrap_err();
    assert_eq!(invalid.id(), "");
    for message in [duplicate.to_string(), closed.to_string(), invalid.to_string()] {
        assert!(!message.ends_with('.'), "{message}");
        assert!(message.starts_with(char::is_lowercase), "{message}");
    }
}

fn worker_with_cancel_timeout(seconds: u64) -> Worker {
    Worker::builder().cancel_timeout(secs(seconds)).build()
}

fn worker_with_timeouts_shutdown(seconds: u64) -> Worker {
    Worker::builder().shutdown_timeout(secs(seconds)).build()
}
