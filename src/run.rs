//! The future spawned for every task: waits for a permit, runs the body, catches its panic and
//! writes exactly one terminal status into the task's slot.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use crate::sync::atomic::Ordering;
use crate::sync::tokio;
use crate::sync::tokio::sync::{Semaphore, SemaphorePermit};

use crate::context::TaskContext;
use crate::panic::panic_message;
use crate::shared::{Shared, Start};
use crate::slot::Slot;
use crate::status::TaskStatus;

/// Counts the task's future as live from before its slot is registered until the future is
/// dropped, and writes `Cancelled` if the future is dropped before it wrote a terminal status:
/// that is what happens when the task is aborted, or when the runtime shuts down under it.
///
/// It is made before the future is spawned and moved into it, so it also fires for a future
/// dropped before its first poll (an async fn's arguments are dropped with its unpolled future).
#[derive(Debug)]
pub(crate) struct FinishGuard {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    armed: bool,
    /// The future runs inside the task's span (see `submit::spawn`): only then is the outcome
    /// recorded on the current span.
    pub(crate) instrumented: bool,
}

impl FinishGuard {
    pub(crate) fn new(shared: Arc<Shared>, slot: Arc<Slot>) -> Self {
        shared.tracker.enter();
        Self {
            shared,
            slot,
            armed: true,
            instrumented: false,
        }
    }

    /// The task will not run after all (its submission was refused): write nothing.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    fn finish(&mut self, status: TaskStatus) {
        self.armed = false;
        if self.instrumented {
            record_outcome(&status);
        }
        self.shared.finish(&self.slot, status, false);
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(task_id = %self.slot.id(), "task dropped before it finished");
            if self.instrumented {
                record_outcome(&TaskStatus::Cancelled);
            }
            self.shared.finish(&self.slot, TaskStatus::Cancelled, true);
        }
        self.shared.tracker.exit();
    }
}

/// Runs one task to its terminal status.
///
/// The status is written only after [`execute`] has returned, that is once the closure, the body
/// and everything they captured are dropped: whoever sees the task terminal (`wait`, `cancel`,
/// `shutdown`) knows none of its code runs any more.
///
/// The future this returns is what tokio stores in the task's cell and copies as the task
/// changes stage, so nothing is kept in it twice. It is an `async move` block rather than an
/// `async fn`: an `async fn` keeps its arguments and the bindings of its parameters apart (the
/// guard would be there twice); the block uses what it captured in place. See [`execute`] for
/// the body.
#[allow(clippy::manual_async_fn)] // on purpose, see above
pub(crate) fn run<F, Fut>(mut guard: FinishGuard, make: F) -> impl Future<Output = ()>
where
    F: FnOnce(&Arc<Slot>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    async move {
        match execute(&guard, make).await {
            Some(status) => guard.finish(status),
            None => guard.disarm(),
        }
    }
}

/// Waits for a permit, starts the task and runs its body; everything of the task is dropped
/// when this returns. Returns the terminal status to write, or `None` if the task is already
/// terminal.
///
/// A task from `submit_with_context` watches its token itself (its body gets a handle in its
/// `TaskContext`). A task from `submit` has no token: it is stopped by an abort, which drops its
/// body at its next `.await` (see `Slot::stop`), so it needs no token-tree node and races nothing
/// on every poll. Either way, a task told to stop is marked in its slot: it never starts, and
/// whatever it returns, it ends cancelled.
async fn execute<F, Fut>(guard: &FinishGuard, make: F) -> Option<TaskStatus>
where
    F: FnOnce(&Arc<Slot>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let FinishGuard { shared, slot, .. } = guard;

    let _permit = match shared.semaphore() {
        None => None,
        // Boxed, so that a worker without a limit does not carry the wait's room in every task.
        Some(semaphore) => {
            let context = slot.is_context().then_some(slot);
            match Box::pin(permit(shared, semaphore, context)).await {
                Some(permit) => Some(permit),
                None => return Some(TaskStatus::Cancelled),
            }
        }
    };

    match shared.start(slot) {
        Start::Run => tracing::debug!(task_id = %slot.id(), "task started"),
        Start::Cancelled => return Some(TaskStatus::Cancelled),
        Start::Over => return None,
    }

    // The body is pinned straight out of what `catch_unwind` returned: that result (the size
    // of the body) is gone before the body is awaited, so the task's future does not keep it
    // beside the pinned body.
    let mut body = pin!(match catch_unwind(AssertUnwindSafe(|| make(slot))) {
        Ok(body) => body,
        Err(payload) => return Some(ended(slot, panicked(slot, payload.as_ref()))),
    });
    let outcome = poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(payload)),
        },
    )
    .await;

    let status = match outcome {
        Ok(Ok(())) => TaskStatus::Completed,
        Ok(Err(error)) => TaskStatus::Failed(format!("{error:#}")),
        Err(payload) => panicked(slot, payload.as_ref()),
    };
    Some(ended(slot, status))
}

/// The status a task ends with: whatever it returned after it was told to stop, it was
/// cancelled.
fn ended(slot: &Slot, status: TaskStatus) -> TaskStatus {
    if slot.stopped() {
        TaskStatus::Cancelled
    } else {
        status
    }
}

/// The status of a task whose body (or the closure making it) panicked.
fn panicked(slot: &Slot, payload: &(dyn std::any::Any + Send)) -> TaskStatus {
    let message = panic_message(payload);
    tracing::warn!(task_id = %slot.id(), panic = %message, "task panicked");
    TaskStatus::Failed(format!("panicked: {message}"))
}

/// Waits for a concurrency permit, or, for a context task, for it to be told to stop first
/// (`None`). A task from `submit` is aborted instead, which drops this wait.
async fn permit<'a>(
    shared: &Shared,
    semaphore: &'a Semaphore,
    context: Option<&Arc<Slot>>,
) -> Option<SemaphorePermit<'a>> {
    /// Keeps the count right however the wait ends, an abort included.
    struct Waiting<'a>(&'a crate::sync::atomic::AtomicUsize);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let waiting = shared.waiting_for_permit();
    waiting.fetch_add(1, Ordering::Relaxed);
    let _waiting = Waiting(waiting);
    match context {
        // Waits the way its body's `TaskContext::cancelled` would: in the slot, making no token.
        Some(slot) => {
            let context = TaskContext::new(Arc::clone(slot));
            tokio::select! {
                biased;
                () = context.cancelled() => None,
                permit = semaphore.acquire() => permit.ok(),
            }
        }
        None => semaphore.acquire().await.ok(),
    }
}

/// Records how the task ended on its span (the current one: the task's future is instrumented
/// with it, and so is its drop), in the fields OpenTelemetry bridges read.
fn record_outcome(status: &TaskStatus) {
    // Cheap when nothing listens at INFO (the span's level): no look-up of the current span.
    if !tracing::level_enabled!(tracing::Level::INFO) {
        return;
    }
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("status", status.name());
    if let TaskStatus::Failed(message) = status {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_message", message.as_str());
    }
}
