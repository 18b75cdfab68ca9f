//! The span of each task, as a `tracing-opentelemetry` layer would read it: one span per task,
//! named by `otel.name`, with `task_id`, `worker`, `otel.kind`, the final `status`, and on a
//! failed (or panicked) task `otel.status_code = "ERROR"` with the failure in
//! `otel.status_message`, recorded in that order (the bridge turns a later `status_code` into an
//! error without a message).
//!
//! Its own test binary, and every test captures: a thread-local subscriber next to tests that
//! run without one can miss spans (tracing caches per-callsite interest across threads).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use background_worker::{TaskStatus, Worker};
use common::{forever, secs, settle, sleep_secs};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One captured span: its name, its fields in the order they were given a value, and whether
/// it was closed.
#[derive(Debug, Clone, Default)]
struct CapturedSpan {
    name: &'static str,
    /// Every value given to a field, in order: at creation, then by each `record`.
    values: Vec<(String, String)>,
    /// Fields declared on the span (with a value or `Empty`).
    declared: Vec<&'static str>,
    closed: bool,
}

impl CapturedSpan {
    /// The field's last value.
    fn field(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Where the field was first given a value, among all the values given.
    fn position(&self, name: &str) -> Option<usize> {
        self.values.iter().position(|(field, _)| field == name)
    }
}

#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<BTreeMap<u64, CapturedSpan>>>);

impl Spans {
    /// The spans whose `task_id` is `id`.
    fn of_task(&self, id: &str) -> Vec<CapturedSpan> {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|span| span.field("task_id") == Some(id))
            .cloned()
            .collect()
    }

    /// The one span of task `id`.
    fn one(&self, id: &str) -> CapturedSpan {
        let spans = self.of_task(id);
        assert_eq!(spans.len(), 1, "{id}: {spans:#?}");
        spans.into_iter().next().unwrap()
    }
}

struct Values<'a>(&'a mut Vec<(String, String)>);

impl Visit for Values<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

struct Capture(Spans);

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut span = CapturedSpan {
            name: attrs.metadata().name(),
            declared: attrs
                .metadata()
                .fields()
                .iter()
                .map(|field| field.name())
                .collect(),
            ..CapturedSpan::default()
        };
        attrs.record(&mut Values(&mut span.values));
        (self.0).0.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(span) = (self.0).0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Values(&mut span.values));
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if let Some(span) = (self.0).0.lock().unwrap().get_mut(&id.into_u64()) {
            span.closed = true;
        }
    }
}

/// Captures every span of this thread (the whole current-thread runtime of the test) until the
/// guard is dropped.
fn capture_spans() -> (Spans, tracing::subscriber::DefaultGuard) {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
    (spans, tracing::subscriber::set_default(subscriber))
}

/// What every task span carries, whatever the outcome.
fn assert_task_span(span: &CapturedSpan, id: &str, worker: &str, status: &str) {
    assert_eq!(span.name, "task", "{span:#?}");
    assert_eq!(
        span.field("otel.name"),
        Some("background_worker.task"),
        "{span:#?}"
    );
    assert_eq!(span.field("otel.kind"), Some("internal"), "{span:#?}");
    assert_eq!(span.field("task_id"), Some(id), "{span:#?}");
    assert_eq!(span.field("worker"), Some(worker), "{span:#?}");
    assert_eq!(span.field("status"), Some(status), "{span:#?}");
    for field in ["otel.status_code", "otel.status_message"] {
        assert!(span.declared.contains(&field), "{field} is declared: {span:#?}");
    }
    assert!(span.closed, "the span closes when the task is over: {span:#?}");
}

/// `otel.status_code = "ERROR"`, then `otel.status_message` with the failure.
fn assert_error(span: &CapturedSpan, message: &str) {
    assert_eq!(span.field("otel.status_code"), Some("ERROR"), "{span:#?}");
    assert_eq!(span.field("otel.status_message"), Some(message), "{span:#?}");
    assert!(
        span.position("otel.status_code") < span.position("otel.status_message"),
        "the code comes first, or the bridge drops the message: {span:#?}"
    );
}

fn assert_no_error(span: &CapturedSpan) {
    assert_eq!(span.field("otel.status_code"), None, "{span:#?}");
    assert_eq!(span.field("otel.status_message"), None, "{span:#?}");
}

#[tokio::test(start_paused = true)]
async fn completed_failed_and_panicked_tasks_have_one_span_each_with_their_outcome() {
    let (spans, _guard) = capture_spans();
    let worker = Worker::builder().name("spans").build();
    worker.submit("fine", || async { Ok(()) }).await.unwrap();
    worker
        .submit("bad", || async {
            Err(anyhow::anyhow!("disk full").context("writing the report"))
        })
        .await
        .unwrap();
    worker
        .submit("boom", || async { panic!("bad input") })
        .await
        .unwrap();
    assert_eq!(worker.wait("fine").await, Some(TaskStatus::Completed));
    worker.wait("bad").await;
    worker.wait("boom").await;
    settle().await;

    let fine = spans.one("fine");
    assert_task_span(&fine, "fine", "spans", "completed");
    assert_no_error(&fine);

    let bad = spans.one("bad");
    assert_task_span(&bad, "bad", "spans", "failed");
    assert_error(&bad, "writing the report: disk full");

    let boom = spans.one("boom");
    assert_task_span(&boom, "boom", "spans", "failed");
    assert_error(&boom, "panicked: bad input");
}

#[tokio::test(start_paused = true)]
async fn cancelled_and_aborted_tasks_are_not_errors() {
    let (spans, _guard) = capture_spans();
    let worker = Worker::builder().cancel_timeout(secs(1)).build();
    worker.submit("polite", forever).await.unwrap();
    worker
        .submit_with_context("stubborn", |_ctx| async {
            sleep_secs(3600).await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;
    assert_eq!(worker.cancel("polite").await, Ok(TaskStatus::Cancelled));
    assert_eq!(worker.cancel("stubborn").await, Ok(TaskStatus::Cancelled));
    settle().await;

    for id in ["polite", "stubborn"] {
        let span = spans.one(id);
        assert_task_span(&span, id, "default", "cancelled");
        assert_no_error(&span);
    }
}
