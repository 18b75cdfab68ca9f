//! Feature `metrics`: what a worker emits through the `metrics` facade, read back with
//! metrics-util's `DebuggingRecorder`. Every test builds its worker under a local recorder
//! (`metrics::with_local_recorder`): the handles are resolved when the worker is built, so they
//! stay with that recorder whichever thread emits later.

#![cfg(feature = "metrics")]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use background_worker::metrics::{
    SHUTDOWN_DURATION_SECONDS, SHUTDOWN_TASKS_TOTAL, TASKS, TASKS_FINISHED_TOTAL, TASKS_SUBMITTED_TOTAL,
    TASK_DURATION_SECONDS, TASK_QUEUE_WAIT_SECONDS,
};
use background_worker::{TaskOutcome, TaskStatus, Worker, WorkerBuilder};
use common::{forever, secs, settle, sleep_secs};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

/// A series: its name and its labels, sorted by key.
type Series = (String, Vec<(String, String)>);

/// What the recorder holds, summed over every snapshot taken so far: a `DebuggingRecorder`
/// snapshot resets the counters and gauges it reads and empties the histograms, so each
/// snapshot holds what changed since the previous one.
struct Recorded {
    snapshotter: Snapshotter,
    counters: BTreeMap<Series, u64>,
    gauges: BTreeMap<Series, f64>,
    histograms: BTreeMap<Series, Vec<f64>>,
    /// Per metric name: its unit and description.
    described: BTreeMap<String, (Option<Unit>, Option<String>)>,
}

impl Recorded {
    fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            histograms: BTreeMap::new(),
            described: BTreeMap::new(),
        }
    }

    /// Adds what changed since the last call.
    fn update(&mut self) {
        for (key, unit, description, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            labels.sort();
            let series = (key.name().to_owned(), labels);
            self.described.insert(
                key.name().to_owned(),
                (unit, description.map(|text| text.to_string())),
            );
            match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    *self.counters.entry(series).or_default() += n;
                }
                (MetricKind::Gauge, DebugValue::Gauge(x)) => {
                    *self.gauges.entry(series).or_default() += x.into_inner();
                }
                (MetricKind::Histogram, DebugValue::Histogram(samples)) => self
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(samples.into_iter().map(|x| x.into_inner())),
                (kind, value) => panic!("{kind:?} with a {value:?}"),
            }
        }
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        *self
            .counters
            .get(&series(name, labels))
            .unwrap_or_else(|| panic!("no counter {name} {labels:?} in {:#?}", self.counters))
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        *self
            .gauges
            .get(&series(name, labels))
            .unwrap_or_else(|| panic!("no gauge {name} {labels:?} in {:#?}", self.gauges))
    }

    /// The samples of a histogram, sorted; none if it was never registered.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut samples = self
            .histograms
            .get(&series(name, labels))
            .cloned()
            .unwrap_or_default();
        samples.sort_by(f64::total_cmp);
        samples
    }

    /// Every series of every kind.
    fn all_series(&self) -> BTreeSet<Series> {
        self.counters
            .keys()
            .chain(self.gauges.keys())
            .chain(self.histograms.keys())
            .cloned()
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

/// Builds `builder` under a fresh recorder.
fn recorded(builder: WorkerBuilder) -> (Worker, Recorded) {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let worker = metrics::with_local_recorder(&recorder, || builder.build());
    (worker, recorded)
}

const FINISHED: [&str; 3] = ["completed", "failed", "cancelled"];
const OUTCOMES: [&str; 4] = ["completed", "failed", "cancelled", "aborted"];

#[tokio::test(start_paused = true)]
async fn every_counter_and_gauge_is_there_at_zero_once_the_worker_is_built() {
    let (_worker, mut recorded) = recorded(Worker::builder().name("fresh"));
    recorded.update();

    let w = ("worker", "fresh");
    assert_eq!(recorded.counter(TASKS_SUBMITTED_TOTAL, &[w]), 0);
    for status in FINISHED {
        assert_eq!(
            recorded.counter(TASKS_FINISHED_TOTAL, &[w, ("status", status)]),
            0
        );
        assert!(recorded
            .histogram(TASK_DURATION_SECONDS, &[w, ("status", status)])
            .is_empty());
    }
    for state in ["pending", "running"] {
        assert_eq!(recorded.gauge(TASKS, &[w, ("state", state)]), 0.0);
    }
    for outcome in OUTCOMES {
        assert_eq!(
            recorded.counter(SHUTDOWN_TASKS_TOTAL, &[w, ("outcome", outcome)]),
            0
        );
    }
    // 1 + 3 + 2 + 4 counters and gauges, 1 + 3 + 1 histograms: 15 series, no more.
    assert_eq!(recorded.all_series().len(), 15, "{:#?}", recorded.all_series());

    // Described, with units.
    for (name, unit) in [
        (TASKS_SUBMITTED_TOTAL, Unit::Count),
        (TASKS_FINISHED_TOTAL, Unit::Count),
        (TASKS, Unit::Count),
        (TASK_QUEUE_WAIT_SECONDS, Unit::Seconds),
        (TASK_DURATION_SECONDS, Unit::Seconds),
        (SHUTDOWN_TASKS_TOTAL, Unit::Count),
        (SHUTDOWN_DURATION_SECONDS, Unit::Seconds),
    ] {
        let (got, description) = &recorded.described[name];
        assert_eq!(got.as_ref(), Some(&unit), "{name}");
        assert!(
            description.as_ref().is_some_and(|text| !text.is_empty()),
            "{name}"
        );
    }
}

/// The scripted mix: completed, failed, panicked, cancelled while pending and while running,
/// then a shutdown that cancels a pending task and aborts one that ignores its token. One
/// permit, so every wait is known to the second.
#[tokio::test(start_paused = true)]
async fn a_scripted_mix_is_counted_exactly() {
    let (worker, mut recorded) = recorded(
        Worker::builder()
            .name("mix")
            .max_concurrent(1)
            .cancel_timeout(secs(1))
            .shutdown_timeout(secs(2)),
    );
    let w = ("worker", "mix");

    // t = 0: three tasks; each waits for the one before it.
    worker
        .submit("ok", || async {
            sleep_secs(1).await;
            Ok(())
        })
        .await
        .unwrap();
    worker
        .submit("bad", || async { anyhow::bail!("disk full") })
        .await
        .unwrap();
    worker
        .submit("boom", || async { panic!("bad input") })
        .await
        .unwrap();
    settle().await;
    recorded.update();
    assert_eq!(recorded.counter(TASKS_SUBMITTED_TOTAL, &[w]), 3);
    assert_eq!(recorded.gauge(TASKS, &[w, ("state", "running")]), 1.0);
    assert_eq!(recorded.gauge(TASKS, &[w, ("state", "pending")]), 2.0);

    assert_eq!(worker.wait("ok").await, Some(TaskStatus::Completed));
    assert!(matches!(worker.wait("bad").await, Some(TaskStatus::Failed(_))));
    assert!(matches!(worker.wait("boom").await, Some(TaskStatus::Failed(_))));

    // t = 1: one running, one waiting for its permit; both cancelled at t = 3.
    worker.submit("blocker", forever).await.unwrap();
    worker.submit("queued", forever).await.unwrap();
    settle().await;
    recorded.update();
    assert_eq!(recorded.gauge(TASKS, &[w, ("state", "running")]), 1.0);
    assert_eq!(recorded.gauge(TASKS, &[w, ("state", "pending")]), 1.0);
    sleep_secs(2).await;
    assert_eq!(worker.cancel("queued").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.cancel("blocker").await, Ok(TaskStatus::Cancelled));

    // t = 3: one that ignores its token, and one waiting behind it; the shutdown at t = 4
    // cancels the waiting one at once and aborts the other at its timeout, t = 6.
    worker
        .submit_with_context("stubborn", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    worker.submit("polite", forever).await.unwrap();
    settle().await;
    sleep_secs(1).await;
    let report = worker.shutdown().await;
    assert_eq!(report.outcome("stubborn"), Some(&TaskOutcome::Aborted));
    assert_eq!(report.outcome("polite"), Some(&TaskOutcome::Cancelled));
    assert_eq!(report.total(), 2);
    assert_eq!(report.elapsed(), secs(2));
    recorded.update();

    // Counters.
    assert_eq!(recorded.counter(TASKS_SUBMITTED_TOTAL, &[w]), 7);
    let finished = |status| recorded.counter(TASKS_FINISHED_TOTAL, &[w, ("status", status)]);
    assert_eq!(
        (finished("completed"), finished("failed"), finished("cancelled")),
        (1, 2, 4)
    );
    let drained = |outcome| recorded.counter(SHUTDOWN_TASKS_TOTAL, &[w, ("outcome", outcome)]);
    assert_eq!(
        (
            drained("completed"),
            drained("failed"),
            drained("cancelled"),
            drained("aborted")
        ),
        (0, 0, 1, 1)
    );

    // Gauges: back to 0.
    assert_eq!(recorded.gauge(TASKS, &[w, ("state", "pending")]), 0.0);
    assert_eq!(recorded.gauge(TASKS, &[w, ("state", "running")]), 0.0);

    // Histograms: one queue wait per task (ok 0, bad 1, boom 1, blocker 0, queued 2 until it
    // was cancelled, stubborn 0, polite 1 until the shutdown), one duration per task.
    assert_eq!(
        recorded.histogram(TASK_QUEUE_WAIT_SECONDS, &[w]),
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    );
    let duration = |status| recorded.histogram(TASK_DURATION_SECONDS, &[w, ("status", status)]);
    assert_eq!(duration("completed"), [1.0]);
    assert_eq!(duration("failed"), [0.0, 0.0], "bad and boom fail at once");
    // queued and polite never started (0), blocker ran 2 s, stubborn 3 s until aborted.
    assert_eq!(duration("cancelled"), [0.0, 0.0, 2.0, 3.0]);
    assert_eq!(recorded.histogram(SHUTDOWN_DURATION_SECONDS, &[w]), [2.0]);

    // Still the same 15 series; labels are bounded, none holds a task id.
    let all = recorded.all_series();
    assert_eq!(all.len(), 15, "{all:#?}");
    let ids = ["ok", "bad", "boom", "blocker", "queued", "stubborn", "polite"];
    for (name, labels) in &all {
        for (key, value) in labels {
            assert!(
                ["worker", "status", "state", "outcome"].contains(&key.as_str()),
                "{name}: label {key}"
            );
            assert!(!ids.contains(&value.as_str()), "{name}: {key}={value}");
        }
    }
    assert!(all
        .iter()
        .all(|(_, labels)| labels.contains(&("worker".to_owned(), "mix".to_owned()))));
}

#[tokio::test(start_paused = true)]
async fn each_worker_has_its_own_series_and_the_default_name_is_default() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(recorder.snapshotter());
    let (first, second) = metrics::with_local_recorder(&recorder, || {
        (Worker::new(), Worker::builder().name("reports").build())
    });
    first.submit("a", || async { Ok(()) }).await.unwrap();
    first.wait("a").await;
    for id in ["a", "b"] {
        second.submit(id, || async { Ok(()) }).await.unwrap();
        second.wait(id).await;
    }
    recorded.update();

    assert_eq!(
        recorded.counter(TASKS_SUBMITTED_TOTAL, &[("worker", "default")]),
        1
    );
    assert_eq!(
        recorded.counter(TASKS_SUBMITTED_TOTAL, &[("worker", "reports")]),
        2
    );
    assert_eq!(
        recorded.counter(
            TASKS_FINISHED_TOTAL,
            &[("worker", "reports"), ("status", "completed")]
        ),
        2
    );
    assert_eq!(recorded.all_series().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn metrics_false_and_a_worker_built_before_the_recorder_emit_nothing() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(recorder.snapshotter());
    let early = Worker::new(); // no recorder yet: its handles are no-ops, for good
                               // From here on, this thread (the test's whole runtime) has the recorder.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let quiet = Worker::builder().metrics(false).build();
    for worker in [&quiet, &early] {
        worker.submit("job", || async { Ok(()) }).await.unwrap();
        worker.wait("job").await;
        worker.shutdown().await;
    }
    recorded.update();
    assert!(recorded.all_series().is_empty(), "{:#?}", recorded.all_series());
}
