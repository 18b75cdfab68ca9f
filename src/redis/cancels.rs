//! Cancel requests from other replicas, as stored and published for this run: `<generation>:<id>`.
//! Applied here, whether they came by pub/sub (the listener) or from the stored flags (the
//! heartbeat).

use crate::worker::Worker;

/// Cancels the local task named in a `<generation>:<id>` request, if that submission is still
/// running here. The cancel (which may wait for the cancel timeout) runs in its own task.
pub(crate) fn apply_cancel(worker: &Worker, payload: &str) {
    let Some((generation, id)) = parse_cancel(payload) else {
        tracing::warn!(payload, "redis mirror: ignoring a malformed cancel request");
        return;
    };
    let Some(info) = worker.task_info(id) else { return };
    if info.generation != generation || info.status.is_terminal() {
        return;
    }
    tracing::info!(task_id = %id, "redis mirror: cancel requested by another replica");
    let worker = worker.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let _ = worker.cancel(&id).await;
    });
}

/// `<generation>:<id>` from a cancel request.
pub(crate) fn parse_cancel(payload: &str) -> Option<(u64, &str)> {
    let (generation, id) = payload.split_once(':')?;
    Some((generation.parse().ok()?, id))
}
