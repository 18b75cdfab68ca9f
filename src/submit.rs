//! Submitting a task: the checks, its slot and registration, and the spawn of its future. The
//! work behind [`Worker::submit`](crate::Worker::submit) and
//! [`Worker::submit_with_context`](crate::Worker::submit_with_context).

use std::future::Future;
use std::sync::Arc;

use crate::sync::tokio;
use crate::sync::tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::SubmitError;
use crate::reaper::reap;
use crate::registry::Refused;
use crate::run::{run, FinishGuard};
use crate::shared::Shared;
use crate::slot::Slot;

/// Registers the task `id` as pending and spawns its future, which calls `make` once the task
/// starts. Spawns the reaper (`stop_reaper` stops it) with the first submission that needs it.
/// `generation`: the submission's, from `Shared::next_generation` (taken by the caller, so a
/// claimed submission can name it in Redis before it is spawned).
#[track_caller]
pub(crate) fn spawn<F, Fut>(
    shared: &Arc<Shared>,
    stop_reaper: &CancellationToken,
    id: String,
    generation: u64,
    with_context: bool,
    make: F,
) -> Result<(), SubmitError>
where
    F: FnOnce(&Arc<Slot>) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    if id.is_empty() {
        return Err(SubmitError::InvalidId { id });
    }
    if shared.registry.is_closed() {
        return Err(SubmitError::ShuttingDown { id });
    }
    // Only a context task watches a token (made when its body first asks for it); a plain
    // one is stopped by an abort. The token is not a child of a worker-wide one (see
    // `shutdown::stop_all`).
    let hash = shared.registry.hash(id.as_bytes());
    let telling = shared.telling();
    let slot = Arc::new(Slot::new(id, hash, generation, with_context, telling));
    // Counts the future as live before the slot is visible, so a shutdown that sees the slot
    // also waits for its future.
    let mut guard = FinishGuard::new(Arc::clone(shared), Arc::clone(&slot));
    if let Err(refused) = shared.admit(&slot, telling) {
        guard.disarm();
        let id = slot.id().to_owned();
        return Err(match refused {
            Refused::Occupied => SubmitError::DuplicateId { id },
            Refused::Closed => SubmitError::ShuttingDown { id },
            Refused::Full => SubmitError::AtCapacity {
                id,
                limit: shared.config.max_tracked.unwrap_or(usize::MAX),
            },
        });
    }
    if shared.reaper_due() {
        tokio::spawn(reap(Arc::clone(shared), stop_reaper.clone()));
    }
    let span = tracing::info_span!(
        "task",
        task_id = %slot.id(),
        worker = %shared.config.name,
        status = tracing::field::Empty,
        otel.name = "background_worker.task",
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    // Not boxed: tokio then copies the future (a few hundred bytes) as it spawns it, but one
    // allocation per task fewer is faster in wall-clock time (measured, see BENCHMARKS.md).
    // A span no subscriber wants (the usual case without one at INFO) is not carried: the
    // wrapper would add its size to the future, which tokio copies at every change of the
    // task's stage, and enter and leave nothing at every poll.
    let join = if span.is_disabled() {
        tokio::spawn(run(guard, make))
    } else {
        guard.instrumented = true;
        tokio::spawn(run(guard, make).instrument(span))
    };
    // If the task already ended, its handle comes back and is dropped here, unlocked.
    drop(slot.attach(join));
    tracing::debug!(task_id = %slot.id(), "task submitted");
    Ok(())
}
