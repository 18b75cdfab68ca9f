//! With the `serde` feature: the status, info, health, event, progress and shutdown report types
//! serialize to stable JSON shapes and read back unchanged.
#![cfg(feature = "serde")]

mod common;

use background_worker::{
    Health, Progress, ShutdownReport, TaskEvent, TaskInfo, TaskOutcome, TaskReport, TaskStatus, Worker,
};
use common::{forever, secs, settle, sleep_secs, worker_with_timeouts};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

/// Serializes to a JSON string and reads it back.
fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> T {
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

#[test]
fn task_status_serializes_as_a_tagged_object() {
    assert_eq!(to_json(&TaskStatus::Pending), json!({ "status": "pending" }));
    assert_eq!(to_json(&TaskStatus::Running), json!({ "status": "running" }));
    assert_eq!(to_json(&TaskStatus::Completed), json!({ "status": "completed" }));
    assert_eq!(to_json(&TaskStatus::Cancelled), json!({ "status": "cancelled" }));
    assert_eq!(
        to_json(&TaskStatus::Failed("disk full".into())),
        json!({ "status": "failed", "message": "disk full" })
    );
}

#[test]
fn every_task_status_round_trips() {
    for status in [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed("panicked: bad input".into()),
        TaskStatus::Cancelled,
    ] {
        assert_eq!(round_trip(&status), status);
    }
}

#[test]
fn progress_serializes_its_fields() {
    let progress = Progress::counter(3, 4).with_message("part 3 of 4");

    assert_eq!(
        to_json(&progress),
        json!({ "fraction": 0.75, "done": 3, "total": 4, "message": "part 3 of 4" })
    );
    assert_eq!(round_trip(&progress), progress);
}

#[tokio::test(start_paused = true)]
async fn task_info_serializes_status_times_durations_and_progress() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker
        .submit("first", || async {
            sleep_secs(2).await;
            Ok(())
        })
        .await
        .unwrap();
    worker
        .submit_with_context("second", |ctx| async move {
            ctx.set_progress(Progress::counter(1, 2).with_message("halfway"));
            sleep_secs(3).await;
            Ok(())
        })
        .await
        .unwrap();
    worker.wait("second").await;

    let json = to_json(&worker.task_info("second").unwrap());

    assert_eq!(json["id"], "second");
    assert_eq!(json["status"], json!({ "status": "completed" }));
    assert_eq!(json["queued"], to_json(&secs(2)));
    assert_eq!(json["run_time"], to_json(&secs(3)));
    assert!(json["submitted_at"].is_object() && json["started_at"].is_object());
    assert!(json["finished_at"].is_object());
    assert_eq!(json["progress"]["done"], 1);
    assert_eq!(json["progress"]["message"], "halfway");
}

#[tokio::test(start_paused = true)]
async fn task_info_of_a_pending_task_serializes_missing_times_as_null() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("blocker", forever).await.unwrap();
    worker.submit("waiting", forever).await.unwrap();
    settle().await;

    let json = to_json(&worker.task_info("waiting").unwrap());

    assert_eq!(json["started_at"], Value::Null);
    assert_eq!(json["finished_at"], Value::Null);
    assert_eq!(json["run_time"], Value::Null);
    assert_eq!(json["progress"], Value::Null);
}

#[tokio::test(start_paused = true)]
async fn task_info_round_trips() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.set_progress(0.5);
            sleep_secs(1).await;
            anyhow::bail!("upstream returned 503")
        })
        .await
        .unwrap();
    worker.wait("job").await;
    let info: TaskInfo = worker.task_info("job").unwrap();

    assert_eq!(round_trip(&info), info);
}

#[tokio::test(start_paused = true)]
async fn health_serializes_as_a_flat_object() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    settle().await;

    assert_eq!(
        to_json(&worker.health()),
        json!({
            "pending": 1,
            "running": 1,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "total": 2,
            "accepting": true,
            "not_accepting": null,
            "max_tracked": null,
            "max_concurrent": 1,
            "waiting_for_permit": 1,
        })
    );
}

#[tokio::test(start_paused = true)]
async fn health_round_trips() {
    let worker = Worker::new();
    worker.submit("job", forever).await.unwrap();
    worker.shutdown().await;
    let health: Health = worker.health();

    assert_eq!(round_trip(&health), health);
}

#[tokio::test(start_paused = true)]
async fn task_event_serializes_id_status_and_time() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker
        .submit("bad", || async { anyhow::bail!("nope") })
        .await
        .unwrap();
    worker.wait("bad").await;
    let mut last = None;
    while let Ok(event) = events.try_recv() {
        last = Some(event);
    }
    let event: TaskEvent = last.unwrap();

    let json = to_json(&event);

    assert_eq!(json["id"], "bad");
    assert_eq!(json["status"], json!({ "status": "failed", "message": "nope" }));
    assert!(json["at"].is_object());
    assert_eq!(round_trip(&event), event);
}

#[test]
fn task_outcome_serializes_as_a_tagged_object() {
    assert_eq!(to_json(&TaskOutcome::Aborted), json!({ "outcome": "aborted" }));
    assert_eq!(
        to_json(&TaskOutcome::Cancelled),
        json!({ "outcome": "cancelled" })
    );
    assert_eq!(
        to_json(&TaskOutcome::Failed("boom".into())),
        json!({ "outcome": "failed", "message": "boom" })
    );
    let report = TaskReport {
        id: "job".into(),
        outcome: TaskOutcome::Completed,
    };
    assert_eq!(
        to_json(&report),
        json!({ "id": "job", "outcome": { "outcome": "completed" } })
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_report_serializes_its_tasks_and_elapsed_time() {
    let worker = worker_with_timeouts(1, 2);
    worker
        .submit_with_context("stubborn", |_ctx| async {
            sleep_secs(60).await;
            Ok(())
        })
        .await
        .unwrap();
    worker.submit("polite", forever).await.unwrap();
    settle().await;

    let report = worker.shutdown().await;
    let json = to_json(&report);

    assert_eq!(
        json["tasks"],
        json!([
            { "id": "polite", "outcome": { "outcome": "cancelled" } },
            { "id": "stubborn", "outcome": { "outcome": "aborted" } },
        ])
    );
    assert_eq!(json["elapsed"], to_json(&secs(2)));
}

#[tokio::test(start_paused = true)]
async fn shutdown_report_round_trips() {
    let worker = Worker::new();
    worker.submit("a", forever).await.unwrap();
    worker
        .submit("b", || async { anyhow::bail!("boom") })
        .await
        .unwrap();
    let report: ShutdownReport = worker.shutdown().await;

    assert_eq!(round_trip(&report), report);
}
