//! `max_concurrent`: at most that many bodies run; the others wait as `Pending` for a permit.

mod common;

use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use background_worker::{TaskStatus, Worker};
use common::{sleep_secs, Flag, Gauge};

/// Submits `id`: a body that counts itself in `gauge` while it sleeps `seconds`.
async fn submit_sleeper(worker: &Worker, gauge: &Gauge, id: &str, seconds: u64) {
    let gauge = gauge.clone();
    worker
        .submit(id, move || async move {
            let _running = gauge.enter();
            sleep_secs(seconds).await;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn at_most_max_concurrent_bodies_run_at_once() {
    let worker = Worker::builder().max_concurrent(2).build();
    let gauge = Gauge::new();
    for i in 0..6 {
        submit_sleeper(&worker, &gauge, &format!("job-{i}"), 10).await;
    }
    sleep_secs(1).await;

    assert_eq!(worker.running_task_count().await, 2);
    for i in 0..6 {
        worker.wait(&format!("job-{i}")).await;
    }
    assert_eq!(gauge.peak(), 2);
}

#[tokio::test(start_paused = true)]
async fn task_waiting_for_a_permit_stays_pending_until_one_frees() {
    let worker = Worker::builder().max_concurrent(1).build();
    let gauge = Gauge::new();
    submit_sleeper(&worker, &gauge, "first", 10).await;
    let started = Flag::new();
    let start = started.clone();
    worker
        .submit("second", move || {
            start.set();
            async { Ok(()) }
        })
        .await
        .unwrap();

    sleep_secs(9).await;
    assert_eq!(worker.get_task_status("first").await, Some(TaskStatus::Running));
    assert_eq!(worker.get_task_status("second").await, Some(TaskStatus::Pending));
    assert!(
        !started.is_set(),
        "the closure was called before a permit was free"
    );

    assert_eq!(worker.wait("second").await, Some(TaskStatus::Completed));
    assert!(started.is_set());
}

#[tokio::test(start_paused = true)]
async fn waiting_task_turns_running_when_it_gets_the_permit() {
    let worker = Worker::builder().max_concurrent(1).build();
    let gauge = Gauge::new();
    submit_sleeper(&worker, &gauge, "first", 5).await;
    submit_sleeper(&worker, &gauge, "second", 5).await;

    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("second").await, Some(TaskStatus::Pending));
    sleep_secs(5).await; // "first" finished at 5 s
    assert_eq!(worker.get_task_status("first").await, Some(TaskStatus::Completed));
    assert_eq!(worker.get_task_status("second").await, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn waiting_tasks_get_permits_in_submission_order() {
    let worker = Worker::builder().max_concurrent(1).build();
    let order = Arc::new(Mutex::new(Vec::new()));
    for id in ["a", "b", "c", "d"] {
        let order = Arc::clone(&order);
        worker
            .submit(id, move || async move {
                order.lock().unwrap().push(id);
                sleep_secs(1).await;
                Ok(())
            })
            .await
            .unwrap();
    }
    worker.wait("d").await;

    assert_eq!(*order.lock().unwrap(), ["a", "b", "c", "d"]);
}

#[tokio::test(start_paused = true)]
async fn failed_panicked_and_cancelled_tasks_give_their_permit_back() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker
        .submit("fails", || async {
            sleep_secs(1).await;
            Err(anyhow!("no"))
        })
        .await
        .unwrap();
    worker
        .submit("panics", || async {
            sleep_secs(1).await;
            panic!("boom")
        })
        .await
        .unwrap();
    worker.submit("cancelled", std::future::pending).await.unwrap();
    worker.submit("last", || async { Ok(()) }).await.unwrap();

    sleep_secs(5).await;
    assert_eq!(
        worker.get_task_status("cancelled").await,
        Some(TaskStatus::Running)
    );
    assert_eq!(worker.cancel("cancelled").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.wait("last").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_zero_still_runs_tasks_one_at_a_time() {
    let worker = Worker::builder().max_concurrent(0).build();
    let gauge = Gauge::new();
    submit_sleeper(&worker, &gauge, "a", 2).await;
    submit_sleeper(&worker, &gauge, "b", 2).await;

    assert_eq!(worker.wait("b").await, Some(TaskStatus::Completed));
    assert_eq!(gauge.peak(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_limit_every_task_runs_at_once() {
    let worker = Worker::new();
    let gauge = Gauge::new();
    for i in 0..500 {
        submit_sleeper(&worker, &gauge, &format!("job-{i}"), 10).await;
    }
    sleep_secs(1).await;

    assert_eq!(worker.running_task_count().await, 500);
    assert_eq!(gauge.peak(), 500);
}
