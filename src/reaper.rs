//! The reaper: a task that removes finished entries when their time to live is up (see
//! [`WorkerBuilder::retain_finished_for`](crate::WorkerBuilder::retain_finished_for)).

use std::sync::Arc;

use crate::sync::tokio;
use crate::sync::tokio::time::Instant;
use crate::sync::tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// Removes finished entries when their time to live is up. Runs until shutdown begins or the last
/// `Worker` handle is dropped (both cancel `stop`).
pub(crate) async fn reap(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let next = shared.prune(Instant::now());
        let wait = async {
            match next {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => shared.retention_queued().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wait => {}
        }
    }
}
