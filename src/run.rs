//! The future spawned for every task: waits for a permit, runs the body, catches its panic and
//! writes exactly one terminal status.

use crate::sync::atomic::Ordering;
use crate::sync::tokio;
use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use crate::sync::tokio_util::sync::CancellationToken;

use crate::context::TaskContext;
use crate::progress::ProgressCell;
use crate::registry::Start;
use crate::status::TaskStatus;
use crate::worker::Shared;

/// What the spawned future needs besides its [`FinishGuard`] (which names the task).
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) token: CancellationToken,
    /// `true` for `submit`: the body is raced against the token and dropped at once when it is
    /// cancelled. `false` for `submit_with_context`: the body watches the token itself.
    pub(crate) race: bool,
    pub(crate) progress: Option<Arc<ProgressCell>>,
}

/// Writes `Cancelled` if the future is dropped before it wrote a terminal status: that is what
/// happens when the task is aborted, or when the runtime shuts down under it. It is made before
/// the future is spawned and moved into it, so it also fires for a future dropped before its first
/// poll (an async fn's arguments are dropped with its unpolled future).
#[derive(Debug)]
pub(crate) struct FinishGuard {
    shared: Arc<Shared>,
    id: Arc<str>,
    generation: u64,
    armed: bool,
}

impl FinishGuard {
    pub(crate) fn new(shared: Arc<Shared>, id: Arc<str>, generation: u64) -> Self {
        Self {
            shared,
            id,
            generation,
            armed: true,
        }
    }

    fn finish(&mut self, status: TaskStatus) -> TaskStatus {
        self.armed = false;
        self.shared.finish(&self.id, self.generation, status)
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(task_id = %self.id, "task dropped before it finished");
            self.shared
                .finish(&self.id, self.generation, TaskStatus::Cancelled);
        }
    }
}

/// Runs one task to its terminal status, which it returns (the drain reads it from the
/// `JoinHandle`).
///
/// The status is written only after [`execute`] has returned, that is once the closure, the body
/// and everything they captured are dropped: whoever sees the task terminal (`wait`, `cancel`,
/// `shutdown`) knows none of its code runs any more.
pub(crate) async fn run<F, Fut>(task: Task, guard: FinishGuard, work: F) -> TaskStatus
where
    F: FnOnce(TaskContext) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut guard = guard;
    match execute(&guard, task, work).await {
        Step::Finish(status) => guard.finish(status),
        Step::Over(status) => {
            guard.armed = false;
            status
        }
    }
}

/// What [`execute`] leaves to do.
enum Step {
    /// Write this terminal status.
    Finish(TaskStatus),
    /// The entry is already terminal (or gone): write nothing.
    Over(TaskStatus),
}

/// Waits for a permit, starts the task and runs its body; everything of the task is dropped
/// when this returns.
async fn execute<F, Fut>(guard: &FinishGuard, task: Task, work: F) -> Step
where
    F: FnOnce(TaskContext) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let FinishGuard {
        shared,
        id,
        generation,
        ..
    } = guard;
    let generation = *generation;
    let Task {
        token,
        race,
        progress,
    } = task;

    let _permit = match shared.semaphore() {
        None => None,
        Some(semaphore) => {
            let waiting = shared.waiting_for_permit();
            waiting.fetch_add(1, Ordering::Relaxed);
            let permit = tokio::select! {
                biased;
                () = token.cancelled() => None,
                permit = semaphore.acquire() => permit.ok(),
            };
            waiting.fetch_sub(1, Ordering::Relaxed);
            match permit {
                Some(permit) => Some(permit),
                None => return Step::Finish(TaskStatus::Cancelled),
            }
        }
    };

    match shared.registry.start(id, generation) {
        Start::Run(times) => {
            tracing::debug!(task_id = %id, "task started");
            shared.observe(&times.transition(id, generation, &TaskStatus::Running));
        }
        Start::Cancelled => return Step::Finish(TaskStatus::Cancelled),
        Start::Over(status) => return Step::Over(status),
    }

    let context = TaskContext::new(Arc::clone(id), token.clone(), progress);
    let outcome = match catch_unwind(AssertUnwindSafe(move || work(context))) {
        Err(payload) => Err(payload),
        Ok(body) => {
            let mut body = pin!(body);
            let caught = poll_fn(
                move |cx| match catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                    Err(payload) => Poll::Ready(Err(payload)),
                },
            );
            if race {
                tokio::select! {
                    biased;
                    () = token.cancelled() => return Step::Finish(TaskStatus::Cancelled),
                    outcome = caught => outcome,
                }
            } else {
                caught.await
            }
        }
    };

    let status = match outcome {
        Ok(Ok(())) => TaskStatus::Completed,
        Ok(Err(error)) => TaskStatus::Failed(format!("{error:#}")),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::warn!(task_id = %id, panic = %message, "task panicked");
            TaskStatus::Failed(format!("panicked: {message}"))
        }
    };
    // Whatever a task returns after it was told to stop, it was cancelled.
    if token.is_cancelled() {
        Step::Finish(TaskStatus::Cancelled)
    } else {
        Step::Finish(status)
    }
}

/// The message of a panic payload: the `&str` or `String` given to `panic!`, or a placeholder
/// naming the payload's type for anything else (as the standard panic hook does).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}
