//! `GET /metrics` in the Prometheus text format (feature `metrics`): the worker's metrics (see
//! `background_worker::metrics`) through metrics-exporter-prometheus, rendered by the console
//! (`Console::metrics`) rather than by the exporter's own listener, so that it shares the API's
//! port.
//!
//! The recorder is installed by [`install`] before `main` builds the worker: the worker takes
//! its metric handles from the recorder installed when it is built.

use std::time::Duration;

use background_worker::metrics::{
    SHUTDOWN_DURATION_SECONDS, SHUTDOWN_SECONDS_BUCKETS, TASK_DURATION_SECONDS, TASK_QUEUE_WAIT_SECONDS,
    TASK_SECONDS_BUCKETS,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// How often the exporter's histograms are maintained (their buckets are drained into the
/// totals the scrape shows; the exporter leaves this to its user when it is not the listener).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder as the global one, with the recommended buckets for the
/// worker's three histograms, and keeps it maintained. Call it before building the worker, on
/// the runtime.
pub(crate) fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(TASK_QUEUE_WAIT_SECONDS.into()),
            TASK_SECONDS_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Full(TASK_DURATION_SECONDS.into()), TASK_SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(SHUTDOWN_DURATION_SECONDS.into()),
            SHUTDOWN_SECONDS_BUCKETS,
        )?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
