//! Prometheus-ready metrics through the `metrics` 0.24 facade (feature `metrics`).
//!
//! With the feature on, [`WorkerBuilder::build`](crate::WorkerBuilder::build) adds an
//! [`Observer`] to every worker that emits these metrics (names, labels and units are fixed):
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `background_worker_tasks_submitted_total` | counter | `worker` | accepted submissions |
//! | `background_worker_tasks_finished_total` | counter | `worker`, `status` = `completed` / `failed` / `cancelled` | terminal statuses (a panic counts as `failed`) |
//! | `background_worker_tasks` | gauge | `worker`, `state` = `pending` / `running` | live tasks now |
//! | `background_worker_task_queue_wait_seconds` | histogram | `worker` | submitted → started, or → ended for a task that never started: one sample per task |
//! | `background_worker_task_duration_seconds` | histogram | `worker`, `status` | started → ended (0 for a task that never started): one sample per task |
//! | `background_worker_shutdown_tasks_total` | counter | `worker`, `outcome` = `completed` / `failed` / `cancelled` / `aborted` | the [`ShutdownReport`]'s counts |
//! | `background_worker_shutdown_duration_seconds` | histogram | `worker` | one sample per shutdown ([`ShutdownReport::elapsed`]) |
//!
//! `worker` is the worker's [`name`](crate::WorkerBuilder::name) (`"default"` unless set): give
//! each worker of a process its own. No label ever carries a task id, so the number of series is
//! fixed (15 per worker) however many tasks run. Every counter and gauge of every label value is
//! registered, at 0, when the worker is built, so a scrape shows `failed 0` rather than nothing.
//!
//! # Install the recorder first
//!
//! The handles of every series are looked up once, when the worker is built, from the recorder
//! installed at that moment (the global one, or a local one with `metrics::with_local_recorder`);
//! afterwards each transition only updates them, with no lookup, no label and no allocation. So
//! install the recorder (your exporter) **before** building the worker: a worker built earlier
//! emits nothing, ever.
//!
//! ```
//! use background_worker::metrics::{
//!     SHUTDOWN_DURATION_SECONDS, SHUTDOWN_SECONDS_BUCKETS, TASK_DURATION_SECONDS,
//!     TASK_QUEUE_WAIT_SECONDS, TASK_SECONDS_BUCKETS,
//! };
//! use background_worker::Worker;
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. The exporter, with buckets for the histograms (`install_recorder` in a real service;
//! //    this example keeps it local).
//! let recorder = PrometheusBuilder::new()
//!     .set_buckets_for_metric(Matcher::Full(TASK_QUEUE_WAIT_SECONDS.into()), TASK_SECONDS_BUCKETS)?
//!     .set_buckets_for_metric(Matcher::Full(TASK_DURATION_SECONDS.into()), TASK_SECONDS_BUCKETS)?
//!     .set_buckets_for_metric(Matcher::Full(SHUTDOWN_DURATION_SECONDS.into()), SHUTDOWN_SECONDS_BUCKETS)?
//!     .build_recorder();
//! let handle = recorder.handle();
//!
//! // 2. Then the worker: its handles come from the recorder installed now.
//! let worker = metrics::with_local_recorder(&recorder, || Worker::builder().name("reports").build());
//!
//! worker.submit("nightly", || async { Ok(()) }).await?;
//! worker.wait("nightly").await;
//!
//! let scrape = handle.render();
//! assert!(scrape.contains(r#"background_worker_tasks_finished_total{worker="reports",status="completed"} 1"#));
//! assert!(scrape.contains(r#"background_worker_tasks_finished_total{worker="reports",status="failed"} 0"#));
//! # Ok(())
//! # }
//! ```
//!
//! # Cost
//!
//! Without a recorder the handles are no-ops; what is left is the cost of an observer on every
//! transition, which is the transition hook's (about 10 % on submit-to-completion of trivial
//! tasks, 0.1 to 0.2 µs per task). A Prometheus recorder doubles that (about 20 %, 0.3 to 0.4 µs
//! per task); BENCHMARKS.md has the figures. A worker built with
//! [`metrics(false)`](crate::WorkerBuilder::metrics) has no metrics observer at all, and costs
//! what it costs without the feature.
//!
//! [`Observer`]: crate::Observer

use std::sync::Arc;

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Gauge,
    Histogram, Unit,
};

use crate::config::Config;
use crate::observe::{Observer, Transition};
use crate::report::ShutdownReport;
use crate::status::TaskStatus;

/// `background_worker_tasks_submitted_total`: accepted submissions (counter; label `worker`).
pub const TASKS_SUBMITTED_TOTAL: &str = "background_worker_tasks_submitted_total";
/// `background_worker_tasks_finished_total`: terminal statuses (counter; labels `worker`,
/// `status`).
pub const TASKS_FINISHED_TOTAL: &str = "background_worker_tasks_finished_total";
/// `background_worker_tasks`: live tasks (gauge; labels `worker`, `state`).
pub const TASKS: &str = "background_worker_tasks";
/// `background_worker_task_queue_wait_seconds`: submission to start, or to end for a task that
/// never started (histogram; label `worker`).
pub const TASK_QUEUE_WAIT_SECONDS: &str = "background_worker_task_queue_wait_seconds";
/// `background_worker_task_duration_seconds`: start to end, 0 for a task that never started
/// (histogram; labels `worker`, `status`).
pub const TASK_DURATION_SECONDS: &str = "background_worker_task_duration_seconds";
/// `background_worker_shutdown_tasks_total`: the shutdown report's counts (counter; labels
/// `worker`, `outcome`).
pub const SHUTDOWN_TASKS_TOTAL: &str = "background_worker_shutdown_tasks_total";
/// `background_worker_shutdown_duration_seconds`: how long each shutdown's drain took
/// (histogram; label `worker`).
pub const SHUTDOWN_DURATION_SECONDS: &str = "background_worker_shutdown_duration_seconds";

/// Recommended histogram buckets (upper bounds, in seconds) for [`TASK_QUEUE_WAIT_SECONDS`] and
/// [`TASK_DURATION_SECONDS`]: 19 buckets from 1 ms to an hour, twelve up to 10 s and seven from
/// 30 s to 60 minutes, for background jobs that take anything from milliseconds to tens of
/// minutes. Use your own when your jobs sit in a narrower range: resolution goes where the
/// buckets are.
pub const TASK_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

/// Recommended histogram buckets (upper bounds, in seconds) for [`SHUTDOWN_DURATION_SECONDS`]: a
/// drain lasts at most about the shutdown timeout (5 s by default), so from 10 ms to a minute.
pub const SHUTDOWN_SECONDS_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The terminal statuses, in the order of the per-status handles.
const FINISHED: [&str; 3] = ["completed", "failed", "cancelled"];
/// The shutdown outcomes, in the order of the per-outcome handles.
const OUTCOMES: [&str; 4] = ["completed", "failed", "cancelled", "aborted"];

/// Called by [`WorkerBuilder::build`](crate::WorkerBuilder::build), unless metrics were turned
/// off: adds the metrics observer, with handles from the recorder installed now.
pub(crate) fn install(config: &mut Config) {
    let observer = MetricsObserver::new(&config.name);
    config.observers.push(Arc::new(observer));
}

/// Emits one worker's metrics. Every handle is resolved in [`MetricsObserver::new`], from the
/// recorder current at build time; the calls per transition only update handles.
struct MetricsObserver {
    submitted: Counter,
    /// Per terminal status, in the order of [`FINISHED`].
    finished: [Counter; 3],
    pending: Gauge,
    running: Gauge,
    queue_wait: Histogram,
    /// Per terminal status, in the order of [`FINISHED`].
    duration: [Histogram; 3],
    /// Per outcome, in the order of [`OUTCOMES`].
    shutdown_tasks: [Counter; 4],
    shutdown_duration: Histogram,
}

impl MetricsObserver {
    fn new(worker: &str) -> Self {
        describe();
        let label = || worker.to_owned();
        let observer = Self {
            submitted: counter!(TASKS_SUBMITTED_TOTAL, "worker" => label()),
            finished: FINISHED
                .map(|status| counter!(TASKS_FINISHED_TOTAL, "worker" => label(), "status" => status)),
            pending: gauge!(TASKS, "worker" => label(), "state" => "pending"),
            running: gauge!(TASKS, "worker" => label(), "state" => "running"),
            queue_wait: histogram!(TASK_QUEUE_WAIT_SECONDS, "worker" => label()),
            duration: FINISHED
                .map(|status| histogram!(TASK_DURATION_SECONDS, "worker" => label(), "status" => status)),
            shutdown_tasks: OUTCOMES
                .map(|outcome| counter!(SHUTDOWN_TASKS_TOTAL, "worker" => label(), "outcome" => outcome)),
            shutdown_duration: histogram!(SHUTDOWN_DURATION_SECONDS, "worker" => label()),
        };
        // Every counter and gauge shows up at 0 from the start (histograms have no such thing:
        // an empty one is rendered once it has a sample).
        observer.submitted.increment(0);
        for counter in observer.finished.iter().chain(&observer.shutdown_tasks) {
            counter.increment(0);
        }
        observer.pending.increment(0.0);
        observer.running.increment(0.0);
        observer
    }
}

/// Describes every metric (help text and unit) to the current recorder.
fn describe() {
    describe_counter!(TASKS_SUBMITTED_TOTAL, Unit::Count, "Tasks accepted by submit.");
    describe_counter!(
        TASKS_FINISHED_TOTAL,
        Unit::Count,
        "Tasks that reached a terminal status (a panic counts as failed)."
    );
    describe_gauge!(TASKS, Unit::Count, "Tasks pending or running now.");
    describe_histogram!(
        TASK_QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "Time from submission to start, or to the end for a task that never started."
    );
    describe_histogram!(
        TASK_DURATION_SECONDS,
        Unit::Seconds,
        "Time from start to end of a task (0 for a task that never started)."
    );
    describe_counter!(
        SHUTDOWN_TASKS_TOTAL,
        Unit::Count,
        "Tasks drained by shutdown, by how they ended."
    );
    describe_histogram!(
        SHUTDOWN_DURATION_SECONDS,
        Unit::Seconds,
        "Time a shutdown took to drain its tasks."
    );
}

impl Observer for MetricsObserver {
    fn on_transition(&self, transition: &Transition<'_>) {
        let index = match transition.status {
            TaskStatus::Pending => {
                self.submitted.increment(1);
                self.pending.increment(1.0);
                return;
            }
            TaskStatus::Running => {
                self.pending.decrement(1.0);
                self.running.increment(1.0);
                if let Some(queued) = transition.queued {
                    self.queue_wait.record(queued.as_secs_f64());
                }
                return;
            }
            TaskStatus::Completed => 0,
            TaskStatus::Failed(_) => 1,
            TaskStatus::Cancelled => 2,
        };
        self.finished[index].increment(1);
        match transition.run_time {
            // It started: its queue wait was recorded on `Running`.
            Some(run_time) => {
                self.running.decrement(1.0);
                self.duration[index].record(run_time.as_secs_f64());
            }
            None => {
                self.pending.decrement(1.0);
                if let Some(queued) = transition.queued {
                    self.queue_wait.record(queued.as_secs_f64());
                }
                self.duration[index].record(0.0);
            }
        }
    }

    fn on_shutdown(&self, report: &ShutdownReport) {
        let counts = [
            report.completed(),
            report.failed(),
            report.cancelled(),
            report.aborted(),
        ];
        for (counter, count) in self.shutdown_tasks.iter().zip(counts) {
            counter.increment(u64::try_from(count).unwrap_or(u64::MAX));
        }
        self.shutdown_duration.record(report.elapsed().as_secs_f64());
    }
}
