//! `subscribe()`: the stream of status changes. Each task's events come in order; a slow or
//! dropped subscriber never blocks or slows the worker, and a lagging one is told it lagged.

mod common;

use std::collections::HashMap;
use std::time::SystemTime;

use background_worker::{TaskEvent, TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use TaskStatus::{Cancelled, Completed, Pending, Running};

/// Every event already sent to `events`, without waiting for more.
fn drain(events: &mut Receiver<TaskEvent>) -> Vec<TaskEvent> {
    let mut received = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => received.push(event),
            Err(TryRecvError::Empty) => return received,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// The statuses in `events` for task `id`, in the order received.
fn statuses_of(events: &[TaskEvent], id: &str) -> Vec<TaskStatus> {
    events
        .iter()
        .filter(|event| event.id == id)
        .map(|event| event.status.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_completed_task_emits_pending_running_completed() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    let received = drain(&mut events);

    assert_eq!(statuses_of(&received, "job"), [Pending, Running, Completed]);
    assert_eq!(received.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_pending_event_is_sent_when_submit_returns() {
    let worker = Worker::new();
    let mut events = worker.subscribe();

    worker.submit("job", forever).await.unwrap();

    let event = events.try_recv().expect("sent before submit returned");
    assert_eq!((event.id.as_str(), event.status), ("job", Pending));
}

#[tokio::test(start_paused = true)]
async fn a_failed_task_emits_failed_with_its_message() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker.wait("bad").await;

    assert_eq!(
        statuses_of(&drain(&mut events), "bad"),
        [Pending, Running, TaskStatus::Failed("disk full".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_emits_failed_with_the_panic_message() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker
        .submit("boom", || async { panic!("bad input") })
        .await
        .unwrap();
    worker.wait("boom").await;

    assert_eq!(
        statuses_of(&drain(&mut events), "boom"),
        [Pending, Running, TaskStatus::Failed("panicked: bad input".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_running_task_emits_cancelled_last() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker.submit("job", forever).await.unwrap();
    settle().await;

    worker.cancel("job").await.unwrap();

    assert_eq!(
        statuses_of(&drain(&mut events), "job"),
        [Pending, Running, Cancelled]
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_before_it_started_never_emits_running() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("blocker", forever).await.unwrap();
    let mut events = worker.subscribe();
    worker.submit("waiting", forever).await.unwrap();
    settle().await;

    worker.cancel("waiting").await.unwrap();

    assert_eq!(statuses_of(&drain(&mut events), "waiting"), [Pending, Cancelled]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_emits_the_terminal_status_of_every_live_task() {
    let worker = Worker::builder().max_concurrent(1).build();
    let mut events = worker.subscribe();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    settle().await;

    worker.shutdown().await;
    let received = drain(&mut events);

    assert_eq!(statuses_of(&received, "running"), [Pending, Running, Cancelled]);
    assert_eq!(statuses_of(&received, "pending"), [Pending, Cancelled]);
}

#[tokio::test(start_paused = true)]
async fn each_task_emits_its_events_in_order_when_tasks_interleave() {
    let worker = Worker::builder().max_concurrent(4).build();
    let mut events = worker.subscribe();
    for i in 0..40_u64 {
        worker
            .submit(format!("job-{i}"), move || async move {
                sleep_secs(i % 5).await;
                if i % 3 == 0 {
                    anyhow::bail!("failed {i}");
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    sleep_secs(60).await;

    let mut per_task: HashMap<String, Vec<TaskStatus>> = HashMap::new();
    for event in drain(&mut events) {
        per_task.entry(event.id).or_default().push(event.status);
    }

    assert_eq!(per_task.len(), 40);
    for (id, statuses) in per_task {
        assert_eq!(statuses.len(), 3, "{id}: {statuses:?}");
        assert_eq!(statuses[..2], [Pending, Running], "{id}");
        assert!(statuses[2].is_terminal(), "{id}: {statuses:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_terminal_event_matches_the_final_status() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker
        .submit("bad", || async { anyhow::bail!("nope") })
        .await
        .unwrap();
    let status = worker.wait("bad").await.unwrap();

    let last = drain(&mut events).pop().unwrap();

    assert_eq!(last.status, status);
}

#[tokio::test(start_paused = true)]
async fn an_event_carries_the_wall_clock_time_of_the_change() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    let before = SystemTime::now();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    let after = SystemTime::now();

    for event in drain(&mut events) {
        assert!(before <= event.at && event.at <= after, "{event:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_sees_only_changes_made_after_it_subscribed() {
    let worker = Worker::new();
    worker.submit("before", || async { Ok(()) }).await.unwrap();
    worker.wait("before").await;

    let mut events = worker.subscribe();
    worker.submit("after", || async { Ok(()) }).await.unwrap();
    worker.wait("after").await;
    let received = drain(&mut events);

    assert!(statuses_of(&received, "before").is_empty());
    assert_eq!(statuses_of(&received, "after"), [Pending, Running, Completed]);
}

#[tokio::test(start_paused = true)]
async fn every_subscriber_gets_every_event() {
    let worker = Worker::new();
    let mut first = worker.subscribe();
    let mut second = worker.clone().subscribe();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    let first = drain(&mut first);
    let second = drain(&mut second);

    assert_eq!(first.len(), 3);
    assert_eq!(first, second);
}

#[tokio::test(start_paused = true)]
async fn a_lagging_subscriber_is_told_it_lagged_and_then_resumes() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    for i in 0..2_000 {
        worker
            .submit(format!("job-{i}"), || async { Ok(()) })
            .await
            .unwrap();
    }
    sleep_secs(1).await;
    assert_eq!(worker.health().completed, 2_000);

    let lagged = events.recv().await;
    assert!(
        matches!(lagged, Err(RecvError::Lagged(missed)) if missed > 0),
        "{lagged:?}"
    );

    let resumed = drain(&mut events);
    assert!(!resumed.is_empty());
    let last = resumed.last().unwrap();
    assert_eq!((last.id.as_str(), &last.status), ("job-1999", &Completed));
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_never_reads_does_not_block_or_slow_the_worker() {
    let worker = Worker::new();
    let _never_read = worker.subscribe();
    for i in 0..3_000 {
        worker
            .submit(format!("job-{i}"), || async {
                sleep_secs(1).await;
                Ok(())
            })
            .await
            .unwrap();
    }

    sleep_secs(2).await;

    assert_eq!(worker.health().completed, 3_000);
    for info in worker.tasks() {
        assert_eq!(info.queued, secs(0), "{} waited to start", info.id);
        assert_eq!(
            info.run_time,
            Some(secs(1)),
            "{} ran longer than its body",
            info.id
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_subscriber_does_not_affect_the_worker() {
    let worker = Worker::new();
    drop(worker.subscribe());

    worker.submit("job", || async { Ok(()) }).await.unwrap();

    assert_eq!(worker.wait("job").await, Some(Completed));
}

#[tokio::test(start_paused = true)]
async fn a_new_subscriber_works_after_another_was_dropped() {
    let worker = Worker::new();
    drop(worker.subscribe());
    worker.submit("first", || async { Ok(()) }).await.unwrap();
    worker.wait("first").await;

    let mut events = worker.subscribe();
    worker.submit("second", || async { Ok(()) }).await.unwrap();
    worker.wait("second").await;

    assert_eq!(
        statuses_of(&drain(&mut events), "second"),
        [Pending, Running, Completed]
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_dropped_mid_stream_does_not_affect_the_worker() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker.submit("job", forever).await.unwrap();
    settle().await;
    events.recv().await.unwrap();

    drop(events);
    let status = worker.cancel("job").await;

    assert_eq!(status, Ok(Cancelled));
}

#[tokio::test(start_paused = true)]
async fn task_event_debug_shows_the_status_by_its_variant_name() {
    let worker = Worker::new();
    let mut events = worker.subscribe();
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker.wait("bad").await;

    let debug: Vec<String> = drain(&mut events)
        .iter()
        .map(|event| format!("{event:?}"))
        .collect();

    assert!(debug[0].contains("Pending"), "{}", debug[0]);
    assert!(debug[1].contains("Running"), "{}", debug[1]);
    assert!(
        debug[2].contains("Failed") && debug[2].contains("disk full"),
        "{}",
        debug[2]
    );
}
