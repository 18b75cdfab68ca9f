//! `max_tracked`: a bound on tracked entries. Beyond it `submit` fails with
//! `SubmitError::AtCapacity` (after trying retention) and drops the closure unrun.

mod common;

use std::sync::Arc;

use background_worker::{NotAccepting, SubmitError, TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs, Flag};

fn at_capacity(id: &str, limit: usize) -> SubmitError {
    SubmitError::AtCapacity {
        id: id.to_owned(),
        limit,
    }
}

/// Submits a body that completes at once and waits for it.
async fn run_to_completion(worker: &Worker, id: &str) {
    worker.submit(id, || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait(id).await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn submit_beyond_max_tracked_fails_with_at_capacity() {
    let worker = Worker::builder().max_tracked(2).build();
    worker.submit("a", forever).await.unwrap();
    worker.submit("b", forever).await.unwrap();

    let refused = worker.submit("c", forever).await;

    assert_eq!(refused, Err(at_capacity("c", 2)));
}

#[tokio::test(start_paused = true)]
async fn submit_with_context_beyond_max_tracked_fails_with_at_capacity() {
    let worker = Worker::builder().max_tracked(1).build();
    worker.submit("a", forever).await.unwrap();

    let refused = worker.submit_with_context("b", |_ctx| forever()).await;

    assert_eq!(refused, Err(at_capacity("b", 1)));
}

#[tokio::test(start_paused = true)]
async fn submits_up_to_max_tracked_are_accepted() {
    let worker = Worker::builder().max_tracked(3).build();

    for id in ["a", "b", "c"] {
        assert_eq!(worker.submit(id, forever).await, Ok(()));
    }
    assert_eq!(worker.task_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_at_capacity_error_names_the_task_and_the_limit() {
    let worker = Worker::builder().max_tracked(1).build();
    worker.submit("a", forever).await.unwrap();

    let error = worker.submit("report-42", forever).await.unwrap_err();

    assert_eq!(error.id(), "report-42");
    let message = error.to_string();
    assert!(
        message.contains("report-42") && message.contains('1'),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_closure_is_dropped_without_running() {
    let worker = Worker::builder().max_tracked(1).build();
    worker.submit("a", forever).await.unwrap();
    let ran = Flag::new();
    let captured = Arc::new(());
    let (flag, held) = (ran.clone(), Arc::clone(&captured));

    let refused = worker
        .submit("b", move || async move {
            flag.set();
            drop(held);
            Ok(())
        })
        .await;
    assert!(refused.is_err());
    sleep_secs(1).await;

    assert_eq!(Arc::strong_count(&captured), 1, "the closure was dropped");
    assert!(!ran.is_set(), "the closure never ran");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_submission_leaves_the_tracked_tasks_untouched() {
    let worker = Worker::builder().max_tracked(2).build();
    worker.submit("a", forever).await.unwrap();
    worker.submit("b", forever).await.unwrap();
    settle().await;
    let before = worker.tasks().len();

    let refused = worker.submit("c", forever).await;

    assert_eq!(refused, Err(at_capacity("c", 2)));
    assert_eq!(worker.tasks().len(), before);
    assert!(!worker.has_task("c"));
    assert_eq!(worker.get_task_status("a").await, Some(TaskStatus::Running));
    assert_eq!(worker.get_task_status("b").await, Some(TaskStatus::Running));
}

/// At the cap, finished entries make room, the one that finished first first (issue 28: a burst
/// used to lock the service out until retention removed them).
#[tokio::test(start_paused = true)]
async fn finished_entries_make_room_oldest_first() {
    let worker = Worker::builder().max_tracked(2).build();
    run_to_completion(&worker, "a").await;
    run_to_completion(&worker, "b").await;

    assert_eq!(worker.submit("c", forever).await, Ok(()));

    assert!(!worker.has_task("a"), "the oldest finished entry made room");
    assert_eq!(worker.get_task_status("b").await, Some(TaskStatus::Completed));
    assert_eq!(worker.task_count(), 2);
    assert_eq!(worker.health().total, 2);
    assert_eq!(worker.health().completed, 1);
}

/// Only when every tracked task is live is a submission refused; `health` says why.
#[tokio::test(start_paused = true)]
async fn only_a_registry_of_live_tasks_refuses_and_health_says_so() {
    let worker = Worker::builder().max_tracked(2).build();
    run_to_completion(&worker, "a").await;
    worker.submit("b", forever).await.unwrap();
    assert!(worker.health().accepting);

    worker.submit("c", forever).await.unwrap();
    assert!(!worker.has_task("a"));
    let health = worker.health();
    assert_eq!(
        (health.accepting, health.not_accepting, health.max_tracked),
        (false, Some(NotAccepting::AtCapacity), Some(2))
    );
    assert_eq!(worker.submit("d", forever).await, Err(at_capacity("d", 2)));

    worker.cancel("b").await.unwrap();
    assert!(worker.health().accepting, "a finished entry can make room again");
    assert_eq!(worker.submit("d", forever).await, Ok(()));
}

/// Many more submissions than the cap, one after another, as in a burst: each finished entry
/// makes room for the next, and nothing is refused.
#[tokio::test(start_paused = true)]
async fn a_burst_far_beyond_the_cap_is_accepted_once_jobs_finish() {
    let worker = Worker::builder().max_tracked(10).build();
    for i in 0..1_000 {
        let id = format!("job-{i}");
        assert_eq!(
            worker.submit(id.clone(), || async { Ok(()) }).await,
            Ok(()),
            "{id}"
        );
        worker.wait(&id).await;
    }
    assert_eq!(worker.task_count(), 10);
    assert!(worker.has_task("job-999") && !worker.has_task("job-989"));
}

#[tokio::test(start_paused = true)]
async fn cleanup_makes_room_again() {
    let worker = Worker::builder().max_tracked(2).build();
    run_to_completion(&worker, "a").await;
    run_to_completion(&worker, "b").await;

    worker.cleanup_finished_tasks().await;

    assert_eq!(worker.submit("c", forever).await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_rejected_submission_can_be_retried_once_there_is_room() {
    let worker = Worker::builder().max_tracked(1).build();
    worker.submit("a", forever).await.unwrap();
    assert!(worker.submit("b", forever).await.is_err());

    worker.cancel("a").await.unwrap();
    worker.cleanup_finished_tasks().await;

    assert_eq!(worker.submit("b", forever).await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn reusing_the_id_of_a_finished_task_at_capacity_replaces_it() {
    let worker = Worker::builder().max_tracked(1).build();
    run_to_completion(&worker, "nightly").await;

    // The new task replaces the finished entry: still one tracked entry, within the limit.
    assert_eq!(worker.submit("nightly", forever).await, Ok(()));
    assert_eq!(worker.task_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_finished_keeps_room_for_new_work() {
    let worker = Worker::builder().max_tracked(3).max_finished(1).build();

    for i in 0..20 {
        run_to_completion(&worker, &format!("job-{i}")).await;
    }

    assert_eq!(worker.task_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn finished_entries_make_room_before_their_time_to_live() {
    let worker = Worker::builder()
        .max_tracked(2)
        .retain_finished_for(secs(10))
        .build();
    run_to_completion(&worker, "a").await;
    run_to_completion(&worker, "b").await;
    sleep_secs(5).await;

    assert_eq!(worker.submit("c", forever).await, Ok(()));
    assert!(!worker.has_task("a"));
    assert!(worker.has_task("b"));
}

#[tokio::test(start_paused = true)]
async fn expired_entries_make_room_for_new_work() {
    let worker = Worker::builder()
        .max_tracked(2)
        .retain_finished_for(secs(10))
        .build();
    run_to_completion(&worker, "a").await;
    run_to_completion(&worker, "b").await;

    sleep_secs(11).await;

    assert_eq!(worker.submit("c", forever).await, Ok(()));
}

/// `submit` itself removes expired entries before refusing, not only the ttl timer task: here the
/// timer task lives on a runtime that is never driven again, so only `submit` can remove them.
#[test]
fn submit_removes_expired_entries_before_refusing() {
    let paused_runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let worker = Worker::builder()
        .max_tracked(2)
        .retain_finished_for(secs(10))
        .build();

    // The first submission spawns the ttl timer task on this runtime, which then stops running.
    let stalled = paused_runtime();
    stalled.block_on(async {
        run_to_completion(&worker, "warm-up").await;
        worker.cleanup_finished_tasks().await;
    });

    paused_runtime().block_on(async {
        run_to_completion(&worker, "a").await;
        run_to_completion(&worker, "b").await;
        sleep_secs(11).await;
        assert!(
            worker.has_task("a") && worker.has_task("b"),
            "no timer removed them"
        );

        assert_eq!(worker.submit("c", forever).await, Ok(()));
        assert!(!worker.has_task("a") && !worker.has_task("b"));
    });
    drop(stalled);
}

#[tokio::test(start_paused = true)]
async fn max_tracked_zero_refuses_everything() {
    let worker = Worker::builder().max_tracked(0).build();

    assert_eq!(worker.submit("a", forever).await, Err(at_capacity("a", 0)));
    assert_eq!(worker.task_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_submissions_leaves_task_count_bounded() {
    let worker = Worker::builder().max_tracked(100).build();
    let captured = Arc::new(());

    let mut refused = 0;
    for i in 0..10_000 {
        let held = Arc::clone(&captured);
        match worker
            .submit(format!("flood-{i}"), move || async move {
                let _held = held;
                forever().await
            })
            .await
        {
            Ok(()) => {}
            Err(SubmitError::AtCapacity { limit: 100, .. }) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!(refused, 9_900);
    assert_eq!(worker.task_count(), 100);
    assert_eq!(worker.health().total, 100);
    assert_eq!(
        Arc::strong_count(&captured),
        101,
        "only accepted closures are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sustained_flood_with_retention_stays_bounded() {
    let worker = Worker::builder()
        .max_tracked(50)
        .retain_finished_for(secs(1))
        .build();

    let mut accepted = 0;
    let mut peak = 0;
    for second in 0..30 {
        for i in 0..200 {
            if worker
                .submit(format!("job-{second}-{i}"), || async { Ok(()) })
                .await
                .is_ok()
            {
                accepted += 1;
            }
            peak = peak.max(worker.task_count());
        }
        sleep_secs(1).await;
    }

    assert!(peak <= 50, "peak {peak}");
    assert!(
        accepted >= 30 * 50 / 2,
        "retention kept making room: {accepted} accepted"
    );
}
