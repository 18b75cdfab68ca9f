//! `task_info`, `tasks` and `tasks_where`: what an operator sees of each task (status, times,
//! durations), and the listing of all of them.

mod common;

use std::time::SystemTime;

use background_worker::{TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs};

/// A worker running one body at a time, so a second task waits for a permit.
fn one_at_a_time() -> Worker {
    Worker::builder().max_concurrent(1).build()
}

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

#[tokio::test(start_paused = true)]
async fn task_info_is_none_for_an_unknown_id() {
    let worker = Worker::new();
    submit_sleeper(&worker, "known", 1).await;

    assert!(worker.task_info("unknown").is_none());
    assert!(worker.task_info("known").is_some());
}

#[tokio::test(start_paused = true)]
async fn task_info_is_none_after_cleanup() {
    let worker = Worker::new();
    submit_sleeper(&worker, "job", 1).await;
    worker.wait("job").await;

    worker.cleanup_finished_tasks().await;

    assert!(worker.task_info("job").is_none());
}

#[tokio::test(start_paused = true)]
async fn task_info_carries_the_id_and_current_status() {
    let worker = Worker::new();
    submit_sleeper(&worker, "job", 2).await;
    assert_eq!(worker.task_info("job").unwrap().status, TaskStatus::Pending);

    sleep_secs(1).await;
    let info = worker.task_info("job").unwrap();
    assert_eq!(info.id, "job");
    assert_eq!(info.status, TaskStatus::Running);

    sleep_secs(2).await;
    assert_eq!(worker.task_info("job").unwrap().status, TaskStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn task_info_carries_the_failure_message() {
    let worker = Worker::new();
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker.wait("bad").await;

    assert_eq!(
        worker.task_info("bad").unwrap().status,
        TaskStatus::Failed("disk full".into())
    );
}

#[tokio::test(start_paused = true)]
async fn submitted_at_is_the_wall_clock_time_of_the_submission() {
    let worker = Worker::new();
    let before = SystemTime::now();
    submit_sleeper(&worker, "job", 1).await;
    let after = SystemTime::now();

    let submitted_at = worker.task_info("job").unwrap().submitted_at;

    assert!(before <= submitted_at && submitted_at <= after);
}

#[tokio::test(start_paused = true)]
async fn a_pending_task_has_no_start_no_finish_and_no_run_time() {
    let worker = one_at_a_time();
    worker.submit("blocker", forever).await.unwrap();
    submit_sleeper(&worker, "waiting", 1).await;
    settle().await;

    let info = worker.task_info("waiting").unwrap();

    assert_eq!(info.status, TaskStatus::Pending);
    assert_eq!(info.started_at, None);
    assert_eq!(info.finished_at, None);
    assert_eq!(info.run_time, None);
}

#[tokio::test(start_paused = true)]
async fn queued_time_of_a_pending_task_grows_until_now() {
    let worker = one_at_a_time();
    worker.submit("blocker", forever).await.unwrap();
    submit_sleeper(&worker, "waiting", 1).await;

    sleep_secs(4).await;

    assert_eq!(worker.task_info("waiting").unwrap().queued, secs(4));
}

#[tokio::test(start_paused = true)]
async fn queued_time_is_the_wait_for_a_permit() {
    let worker = one_at_a_time();
    submit_sleeper(&worker, "first", 2).await;
    submit_sleeper(&worker, "second", 3).await;

    worker.wait("second").await;

    assert_eq!(worker.task_info("first").unwrap().queued, secs(0));
    assert_eq!(worker.task_info("second").unwrap().queued, secs(2));
}

#[tokio::test(start_paused = true)]
async fn run_time_of_a_running_task_grows_until_now() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();
    settle().await;

    sleep_secs(7).await;

    let info = worker.task_info("job").unwrap();
    assert_eq!(info.status, TaskStatus::Running);
    assert_eq!(info.run_time, Some(secs(7)));
    assert_eq!(info.finished_at, None);
}

#[tokio::test(start_paused = true)]
async fn run_time_of_a_finished_task_is_fixed_at_its_end() {
    let worker = one_at_a_time();
    submit_sleeper(&worker, "first", 2).await;
    submit_sleeper(&worker, "second", 3).await;
    worker.wait("second").await;

    sleep_secs(10).await;

    assert_eq!(worker.task_info("first").unwrap().run_time, Some(secs(2)));
    assert_eq!(worker.task_info("second").unwrap().run_time, Some(secs(3)));
}

#[tokio::test(start_paused = true)]
async fn wall_clock_times_are_spaced_by_queued_and_run_time() {
    let worker = one_at_a_time();
    submit_sleeper(&worker, "first", 2).await;
    submit_sleeper(&worker, "second", 3).await;
    worker.wait("second").await;

    let info = worker.task_info("second").unwrap();
    let started_at = info.started_at.expect("it started");
    let finished_at = info.finished_at.expect("it finished");

    assert_eq!(started_at.duration_since(info.submitted_at).unwrap(), secs(2));
    assert_eq!(finished_at.duration_since(started_at).unwrap(), secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_before_it_started_was_queued_until_cancelled_and_never_ran() {
    let worker = one_at_a_time();
    worker.submit("blocker", forever).await.unwrap();
    submit_sleeper(&worker, "waiting", 1).await;
    sleep_secs(5).await;

    worker.cancel("waiting").await.unwrap();
    sleep_secs(5).await;

    let info = worker.task_info("waiting").unwrap();
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert_eq!(info.started_at, None);
    assert_eq!(info.run_time, None);
    assert!(info.finished_at.is_some());
    assert_eq!(info.queued, secs(5));
}

#[tokio::test(start_paused = true)]
async fn tasks_is_empty_for_a_new_worker() {
    let worker = Worker::new();

    assert!(worker.tasks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn tasks_lists_every_tracked_task_with_its_status() {
    let worker = one_at_a_time();
    submit_sleeper(&worker, "done", 1).await;
    worker.wait("done").await;
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    settle().await;

    let mut listed: Vec<(String, TaskStatus)> = worker
        .tasks()
        .into_iter()
        .map(|info| (info.id, info.status))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));

    assert_eq!(
        listed,
        [
            ("done".to_owned(), TaskStatus::Completed),
            ("pending".to_owned(), TaskStatus::Pending),
            ("running".to_owned(), TaskStatus::Running),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_carries_the_same_times_as_task_info() {
    let worker = one_at_a_time();
    submit_sleeper(&worker, "first", 2).await;
    submit_sleeper(&worker, "second", 3).await;
    worker.wait("second").await;

    for listed in worker.tasks() {
        assert_eq!(Some(listed.clone()), worker.task_info(&listed.id));
    }
}

#[tokio::test(start_paused = true)]
async fn tasks_where_keeps_only_the_matching_statuses() {
    let worker = Worker::new();
    worker.submit("ok", || async { Ok(()) }).await.unwrap();
    worker
        .submit("bad", || async { anyhow::bail!("nope") })
        .await
        .unwrap();
    worker.submit("busy", forever).await.unwrap();
    worker.wait("ok").await;
    worker.wait("bad").await;

    let failed = worker.tasks_where(|status| matches!(status, TaskStatus::Failed(_)));
    let live = worker.tasks_where(|status| !status.is_terminal());
    let none = worker.tasks_where(|status| *status == TaskStatus::Cancelled);

    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, "bad");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, "busy");
    assert!(none.is_empty());
}

#[tokio::test(start_paused = true)]
async fn tasks_snapshot_holds_no_lock_while_the_caller_uses_the_worker() {
    let worker = Worker::new();
    for i in 0..64 {
        worker
            .submit(format!("job-{i}"), || async { Ok(()) })
            .await
            .unwrap();
    }
    sleep_secs(1).await;

    // Were a map guard alive during this loop, these calls on the same map would deadlock.
    let mut seen = 0;
    for info in worker.tasks() {
        assert!(worker.task_info(&info.id).is_some());
        worker.submit(info.id.clone(), || async { Ok(()) }).await.unwrap();
        seen += 1;
    }
    for info in worker.tasks_where(|status| *status == TaskStatus::Pending) {
        worker.cancel(&info.id).await.unwrap();
    }
    worker.cleanup_finished_tasks().await;

    assert_eq!(seen, 64);
    assert_eq!(worker.task_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn task_info_debug_shows_the_status_by_its_variant_name() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();
    settle().await;
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker.wait("bad").await;

    let running = format!("{:?}", worker.task_info("job").unwrap());
    let failed = format!("{:?}", worker.task_info("bad").unwrap());

    assert!(running.contains("Running"), "{running}");
    assert!(failed.contains("Failed"), "{failed}");
    assert!(failed.contains("disk full"), "{failed}");
}
