//! The cluster view, with `--redis URL` (feature `redis`): every replica mirrors its jobs to
//! Redis through a [`RedisMirror`], and the console (`Console::mirror`) answers `GET /jobs/{id}`,
//! `GET /jobs`, `DELETE /jobs/{id}` and `GET /health` for the whole cluster.

use std::time::Duration;

use background_worker::RedisMirror;

use crate::config::Config;

/// How long `close` may take on SIGTERM, after the drain, to flush the final statuses.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Namespace of the demo's keys in Redis.
const NAMESPACE: &str = "job-server";

/// The mirror for `--redis URL`, if given; an error message for bad settings.
pub(crate) fn mirror(config: &Config, retention: Duration) -> Result<Option<RedisMirror>, String> {
    let Some(url) = &config.redis else { return Ok(None) };
    let mut builder = RedisMirror::builder(url.as_str())
        .namespace(NAMESPACE)
        .lease(config.lease)
        .retain_finished_for(retention);
    if let Some(replica) = &config.replica {
        builder = builder.replica(replica.as_str());
    }
    builder.build().map(Some).map_err(|error| error.to_string())
}

/// After the worker's drain: flush the final statuses and give the lease back.
pub(crate) async fn close(mirror: &RedisMirror) {
    match mirror.close(CLOSE_TIMEOUT).await {
        Ok(()) => tracing::info!("final statuses flushed to redis"),
        Err(error) => tracing::warn!(%error, "could not flush the final statuses to redis"),
    }
}
