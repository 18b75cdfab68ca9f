//! The transition hook: an `Observer` sees every status change of every task exactly once, in
//! order per task, with no lock held; a panicking observer breaks nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use background_worker::{Observer, ShutdownReport, TaskOutcome, TaskStatus, Transition, Worker};
use common::{forever, secs, settle, sleep_secs, within};

use TaskStatus::{Cancelled, Completed, Pending, Running};

/// What an observer was told, copied out of the borrowed `Transition`.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: String,
    generation: u64,
    status: TaskStatus,
    at: SystemTime,
    submitted_at: SystemTime,
    queued: Option<Duration>,
    run_time: Option<Duration>,
}

/// Records every transition and every shutdown report.
#[derive(Debug, Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    reports: Arc<Mutex<Vec<ShutdownReport>>>,
}

impl Recorder {
    fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn statuses_of(&self, id: &str) -> Vec<TaskStatus> {
        self.all()
            .into_iter()
            .filter(|seen| seen.id == id)
            .map(|seen| seen.status)
            .collect()
    }

    fn of(&self, id: &str) -> Vec<Seen> {
        self.all().into_iter().filter(|seen| seen.id == id).collect()
    }
}

impl Observer for Recorder {
    fn on_transition(&self, t: &Transition<'_>) {
        self.seen.lock().unwrap().push(Seen {
            id: t.id.to_owned(),
            generation: t.generation,
            status: t.status.clone(),
            at: t.at,
            submitted_at: t.submitted_at,
            queued: t.queued,
            run_time: t.run_time,
        });
    }

    fn on_shutdown(&self, report: &ShutdownReport) {
        self.reports.lock().unwrap().push(report.clone());
    }
}

fn observed() -> (Worker, Recorder) {
    let recorder = Recorder::default();
    let worker = Worker::builder()
        .cancel_timeout(secs(2))
        .shutdown_timeout(secs(3))
        .observer(recorder.clone())
        .build();
    (worker, recorder)
}

#[tokio::test(start_paused = true)]
async fn a_completed_task_is_seen_pending_running_completed_once_each() {
    let (worker, seen) = observed();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("job").await, Some(Completed));

    assert_eq!(seen.statuses_of("job"), [Pending, Running, Completed]);
    let generations: Vec<u64> = seen.of("job").iter().map(|s| s.generation).collect();
    assert!(generations.windows(2).all(|w| w[0] == w[1]), "{generations:?}");
}

#[tokio::test(start_paused = true)]
async fn the_pending_transition_is_seen_before_submit_returns() {
    let (worker, seen) = observed();
    worker.submit("job", forever).await.unwrap();
    assert_eq!(seen.statuses_of("job"), [Pending]);
    let pending = &seen.of("job")[0];
    assert_eq!(pending.queued, None);
    assert_eq!(pending.run_time, None);
    assert_eq!(pending.at, pending.submitted_at);
}

#[tokio::test(start_paused = true)]
async fn queued_and_run_time_are_measured_from_submission_and_start() {
    let recorder = Recorder::default();
    let worker = Worker::builder()
        .max_concurrent(1)
        .observer(recorder.clone())
        .build();
    worker
        .submit("first", || async {
            sleep_secs(2).await;
            Ok(())
        })
        .await
        .unwrap();
    worker
        .submit("second", || async {
            sleep_secs(3).await;
            Ok(())
        })
        .await
        .unwrap();
    worker.wait("second").await;

    let second = recorder.of("second");
    assert_eq!(second.len(), 3);
    assert_eq!(second[1].status, Running);
    assert_eq!(second[1].queued, Some(secs(2)));
    assert_eq!(second[1].run_time, None);
    assert_eq!(second[2].status, Completed);
    assert_eq!(second[2].queued, Some(secs(2)));
    assert_eq!(second[2].run_time, Some(secs(3)));
    assert_eq!(second[2].at.duration_since(second[0].at).unwrap(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_before_it_started_is_seen_pending_then_cancelled() {
    let recorder = Recorder::default();
    let worker = Worker::builder()
        .max_concurrent(1)
        .observer(recorder.clone())
        .build();
    worker.submit("busy", forever).await.unwrap();
    worker.submit("queued", forever).await.unwrap();
    settle().await;
    sleep_secs(4).await;

    assert_eq!(worker.cancel("queued").await, Ok(Cancelled));
    assert_eq!(recorder.statuses_of("queued"), [Pending, Cancelled]);
    let cancelled = &recorder.of("queued")[1];
    assert_eq!(cancelled.queued, Some(secs(4)), "queued until it ended");
    assert_eq!(cancelled.run_time, None, "it never ran");
}

#[tokio::test(start_paused = true)]
async fn failures_and_panics_are_seen_with_their_message() {
    let (worker, seen) = observed();
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker
        .submit("boom", || async { panic!("bad input") })
        .await
        .unwrap();
    worker.wait("bad").await;
    worker.wait("boom").await;

    assert_eq!(
        seen.statuses_of("bad"),
        [Pending, Running, TaskStatus::Failed("disk full".into())]
    );
    assert_eq!(
        seen.statuses_of("boom"),
        [Pending, Running, TaskStatus::Failed("panicked: bad input".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn a_resubmitted_id_carries_a_higher_generation() {
    let (worker, seen) = observed();
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;
    worker.submit("job", || async { Ok(()) }).await.unwrap();
    worker.wait("job").await;

    let all = seen.of("job");
    assert_eq!(all.len(), 6);
    assert!(all[..3].iter().all(|s| s.generation == all[0].generation));
    assert!(all[3..].iter().all(|s| s.generation == all[3].generation));
    assert!(all[3].generation > all[0].generation);
}

#[tokio::test(start_paused = true)]
async fn wait_and_cancel_return_only_after_the_observer_saw_the_terminal_status() {
    let (worker, seen) = observed();
    worker.submit("done", || async { Ok(()) }).await.unwrap();
    worker.submit("stop", forever).await.unwrap();

    worker.wait("done").await;
    assert_eq!(seen.statuses_of("done").last(), Some(&Completed));
    worker.cancel("stop").await.unwrap();
    assert_eq!(seen.statuses_of("stop").last(), Some(&Cancelled));
}

#[tokio::test(start_paused = true)]
async fn a_task_aborted_at_the_cancel_timeout_is_seen_cancelled_once() {
    let (worker, seen) = observed();
    worker
        .submit_with_context("stubborn", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("stubborn").await, Ok(Cancelled));
    sleep_secs(1).await;
    assert_eq!(seen.statuses_of("stubborn"), [Pending, Running, Cancelled]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_returns_after_every_terminal_status_and_the_report_were_seen() {
    let (worker, seen) = observed();
    worker.submit("plain", forever).await.unwrap();
    worker
        .submit_with_context("stubborn", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let report = within(10, worker.shutdown()).await;
    assert_eq!(report.outcome("stubborn"), Some(&TaskOutcome::Aborted));
    assert_eq!(seen.statuses_of("plain"), [Pending, Running, Cancelled]);
    assert_eq!(seen.statuses_of("stubborn"), [Pending, Running, Cancelled]);
    assert_eq!(
        seen.reports.lock().unwrap().as_slice(),
        std::slice::from_ref(&report)
    );

    worker.shutdown().await;
    assert_eq!(
        seen.reports.lock().unwrap().len(),
        1,
        "told once, however often shutdown is called"
    );
}

/// Panics on every call.
struct Panicker;

impl Observer for Panicker {
    fn on_transition(&self, _: &Transition<'_>) {
        panic!("observer bug");
    }

    fn on_shutdown(&self, _: &ShutdownReport) {
        panic!("observer bug at shutdown");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_observer_breaks_neither_the_task_nor_the_other_observers() {
    let (logs, _guard) = common::capture_logs();
    let recorder = Recorder::default();
    let worker = Worker::builder()
        .observer(Panicker)
        .observer(recorder.clone())
        .build();

    worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("job").await, Some(Completed));
    assert_eq!(recorder.statuses_of("job"), [Pending, Running, Completed]);

    worker.submit("forever", forever).await.unwrap();
    let report = worker.shutdown().await;
    assert_eq!(report.outcome("forever"), Some(&TaskOutcome::Cancelled));
    assert_eq!(recorder.reports.lock().unwrap().len(), 1);

    let warnings = logs
        .events()
        .into_iter()
        .filter(|event| event.level == tracing::Level::WARN)
        .filter(|event| {
            event
                .field("panic")
                .is_some_and(|panic| panic.contains("observer bug"))
        })
        .count();
    // "job": pending, running, completed; "forever" (cancelled before it started): pending,
    // cancelled; and the shutdown report.
    assert_eq!(warnings, 3 + 2 + 1, "each panic is logged");
}

#[tokio::test(start_paused = true)]
async fn an_observer_may_call_back_into_the_worker() {
    let handle: Arc<Mutex<Option<Worker>>> = Arc::default();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let (inner, seen) = (Arc::clone(&handle), Arc::clone(&statuses));
    let worker = Worker::builder()
        .on_transition(move |t: &Transition<'_>| {
            let Some(worker) = inner.lock().unwrap().clone() else {
                return;
            };
            // A lookup from inside the hook sees the new status: no lock is held.
            let now = worker.task_info(t.id).map(|info| info.status);
            seen.lock().unwrap().push(now);
            assert!(worker.has_task(t.id));
            let _ = worker.health();
        })
        .build();
    *handle.lock().unwrap() = Some(worker.clone());

    worker.submit("job", || async { Ok(()) }).await.unwrap();
    within(5, worker.wait("job")).await;
    assert_eq!(
        *statuses.lock().unwrap(),
        [Some(Pending), Some(Running), Some(Completed)]
    );
    handle.lock().unwrap().take();
}

#[test]
fn every_task_on_a_multi_thread_runtime_is_seen_in_order_exactly_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let recorder = Recorder::default();
    let worker = Worker::builder()
        .cancel_timeout(Duration::from_millis(5))
        .observer(recorder.clone())
        .build();
    const TASKS: usize = 2_000;
    runtime.block_on(async {
        let mut submitters = Vec::new();
        for part in 0..4 {
            let worker = worker.clone();
            submitters.push(tokio::spawn(async move {
                for i in 0..TASKS / 4 {
                    let id = format!("t{part}-{i}");
                    match i % 4 {
                        0 => worker.submit(id, || async { Ok(()) }).await.unwrap(),
                        1 => worker.submit(id, forever).await.unwrap(),
                        2 => worker.submit(id, || async { anyhow::bail!("no") }).await.unwrap(),
                        _ => worker
                            .submit_with_context(id, |ctx| async move {
                                ctx.cancelled().await;
                                Ok(())
                            })
                            .await
                            .unwrap(),
                    }
                }
            }));
        }
        for submitter in submitters {
            submitter.await.unwrap();
        }
        for part in 0..4 {
            for i in (1..TASKS / 4).step_by(8) {
                let _ = worker.cancel(&format!("t{part}-{i}")).await;
            }
        }
        worker.shutdown().await;
    });

    let mut per_task = std::collections::HashMap::<String, Vec<TaskStatus>>::new();
    for seen in recorder.all() {
        per_task.entry(seen.id).or_default().push(seen.status);
    }
    assert_eq!(per_task.len(), TASKS);
    for (id, statuses) in per_task {
        let final_status = runtime.block_on(worker.get_task_status(&id)).unwrap();
        let valid = match statuses.as_slice() {
            [Pending, Running, last] | [Pending, last] => last.is_terminal() && *last == final_status,
            _ => false,
        };
        assert!(valid, "{id}: {statuses:?}, final {final_status:?}");
    }
}
