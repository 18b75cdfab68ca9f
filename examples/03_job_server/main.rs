//! A job service on Axum, the way the crate is meant to be used in a web server: one [`Worker`]
//! built in `main`, the library's jobs console (`background_worker::console`, feature `axum`)
//! mounted at the root, this application's own `POST /jobs` next to it (see `jobs.rs`), served
//! by `console::serve` with timeouts and a connection cap, and `worker.shutdown().await` on
//! SIGTERM.
//!
//! `POST /jobs` starts demo work (`sleep` with progress, `fail`, `panic`, `ignore_cancel`) under a
//! server-generated id, or the client's (`"id"` or `Idempotency-Key`; claimed across the cluster
//! with `--redis`, see `jobs.rs`). The console answers `GET /jobs/{id}` (status, progress, timings), `DELETE
//! /jobs/{id}` (cancel), `GET /jobs?limit=N&cursor=C&status=S&replica=R` (a page, newest first),
//! `GET /health` (`503` once shutdown has begun or while every tracked job is live), `GET /events`
//! (status changes as Server-Sent Events) and `GET /dashboard` (open it in a browser). Bad input
//! gets a `4xx` with a JSON error, never a `500`. Finished jobs stay queryable for ten minutes;
//! at most `--max-tracked` jobs are tracked: at the cap the oldest finished ones make room, and
//! only when all of them are live does a submission get `429` with `Retry-After`.
//!
//! On SIGTERM or Ctrl-C the listener closes, the worker stops accepting jobs (`503`), cancels the
//! running ones and waits for them up to its shutdown timeout, then the report is logged and printed
//! as one `shutdown_report {json}` line on stdout, and the process exits 0. A second signal during
//! the drain exits at once with code 1.
//!
//! With the `metrics` feature, `GET /metrics` answers the worker's metrics in the Prometheus
//! text format (see `metrics.rs`): jobs submitted and finished per status, live jobs, queue wait
//! and run time histograms, shutdown outcomes.
//!
//! With `--redis URL` (and the `redis` feature), every replica mirrors its jobs to Redis and
//! `GET /jobs/{id}`, `GET /jobs` and `DELETE /jobs/{id}` answer for the whole cluster, each job
//! with its `"replica"`; a job of a replica that died is `"lost"` (see `cluster.rs`).
//!
//! `--every NAME=MS` (repeatable; `EVERY=a=1000,b=60000`) registers a schedule `NAME` whose
//! run (a job of about 10 ms) starts every `MS` ms, as the job `NAME@TICK_MS`. Each run's JSON
//! carries `"schedule"` and `"scheduled_at"` (the tick's time, ms since the Unix epoch);
//! `GET /jobs?schedule=NAME` lists a schedule's runs, newest first, and `GET /schedules` every
//! schedule with its cadence, `next_run`, `paused` and its last run. With `--redis`, every
//! replica registers the same schedules and each tick runs on one of them only.
//!
//! ```text
//! cargo run --example 03_job_server --all-features
//! cargo run --example 03_job_server --all-features -- --addr 127.0.0.1:8080 --shutdown-timeout-ms 2000
//! cargo run --example 03_job_server --all-features -- --redis redis://127.0.0.1:6379 --replica a
//! ```
//!
//! Settings (a flag wins over its environment variable):
//!
//! | flag                      | environment           | default          |
//! |---------------------------|-----------------------|------------------|
//! | `--addr HOST:PORT`        | `PORT` (on 127.0.0.1) | `127.0.0.1:3000` |
//! | `--shutdown-timeout-ms N` | `SHUTDOWN_TIMEOUT_MS` | `5000`           |
//! | `--cancel-timeout-ms N`   | `CANCEL_TIMEOUT_MS`   | `5000`           |
//! | `--max-concurrent N`      | `MAX_CONCURRENT`      | no limit         |
//! | `--max-tracked N`         | `MAX_TRACKED`         | `10000`          |
//! | `--max-connections N`     | `MAX_CONNECTIONS`     | file limit - 128 |
//! | `--read-only`             | `READ_ONLY`           | cancel allowed   |
//! | `--redis URL`             | `REDIS_URL`           | none: one process |
//! | `--replica NAME`          | `REPLICA`             | host name and pid |
//! | `--lease-ms N`            | `LEASE_MS`            | `10000`          |
//! | `--every NAME=MS` (repeatable) | `EVERY` (comma-separated) | none |
//!
//! Logs go to stderr (`RUST_LOG`, default `info`); stdout carries only the two machine-readable
//! lines `listening on ADDR` and `shutdown_report {json}`.

#[cfg(feature = "redis")]
mod cluster;
mod config;
mod jobs;
#[cfg(feature = "metrics")]
mod metrics;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use background_worker::console::{self, Console, JobIndex, Serving};
use background_worker::{Schedule, ScheduleError, ShutdownReport, Worker};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Parsed, USAGE};

/// How long open HTTP connections get to finish after the worker's drain, before the process
/// exits anyway. Total shutdown time is at most the worker's shutdown timeout plus this.
const HTTP_DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// Finished jobs stay queryable this long, then `GET /jobs/{id}` answers `404`.
const RETAIN_FINISHED: Duration = Duration::from_secs(10 * 60);
/// What a demo schedule's run does (`--every`): sleep this long.
const SCHEDULED_WORK: Duration = Duration::from_millis(10);
/// Slow or idle clients: a request head must arrive within this (also between requests).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = match Config::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(config)) => config,
        Ok(Parsed::Help(help)) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}\n\nusage: {USAGE}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    #[cfg(feature = "redis")]
    let mirror = match cluster::mirror(&config, RETAIN_FINISHED) {
        Ok(mirror) => mirror,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    #[cfg(not(feature = "redis"))]
    if config.redis.is_some() {
        eprintln!(
            "error: --redis needs the `redis` feature: cargo run --example 03_job_server --all-features"
        );
        return ExitCode::from(2);
    }

    // Before the worker is built: it takes its metric handles from the recorder installed then.
    #[cfg(feature = "metrics")]
    let scrape = match metrics::install() {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("error: cannot install the Prometheus recorder: {error}");
            return ExitCode::FAILURE;
        }
    };

    let index = JobIndex::new(config.max_tracked);
    let mut builder = Worker::builder()
        .name("jobs")
        .shutdown_timeout(config.shutdown_timeout)
        .cancel_timeout(config.cancel_timeout)
        .retain_finished_for(RETAIN_FINISHED)
        .max_tracked(config.max_tracked)
        .observer(index.clone());
    if let Some(limit) = config.max_concurrent {
        builder = builder.max_concurrent(limit);
    }
    #[cfg(feature = "redis")]
    if let Some(mirror) = &mirror {
        builder = builder.observer(mirror.observer());
    }
    let worker = builder.build();
    // A cancel waits for the worker's cancel timeout (then aborts), plus a margin for a remote
    // owner to answer.
    let cancel_wait = config.cancel_timeout + Duration::from_secs(1);
    let console = Console::new(worker.clone())
        .index(index)
        .cancel_wait(cancel_wait)
        .read_only(config.read_only);
    #[cfg(feature = "redis")]
    let console = match &mirror {
        Some(mirror) => {
            if let Err(error) = mirror.start(&worker) {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
            tracing::info!(replica = mirror.replica(), lease = ?config.lease, "mirroring jobs to redis");
            console.mirror(mirror.clone())
        }
        None => console,
    };
    // After the mirror's start: from their first tick on, the schedules' ticks are claimed,
    // so that one replica runs each.
    for (name, period) in &config.every {
        if let Err(error) = schedule_demo(&worker, name, *period) {
            eprintln!("error: --every {name}={}: {error}", period.as_millis());
            return ExitCode::from(2);
        }
    }
    #[cfg(feature = "metrics")]
    let console = console.metrics(move || scrape.render());
    let jobs = jobs::Jobs::new(worker.clone(), console.clone());
    #[cfg(feature = "redis")]
    let jobs = jobs.mirror(mirror.clone());
    let app = console.router().merge(jobs.router());
    let serving = Serving::default()
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .request_timeout(cancel_wait + Duration::from_secs(5))
        .max_body_bytes(jobs::MAX_BODY_BYTES)
        .max_connections(config.max_connections);

    let listener = match TcpListener::bind(&config.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(error) => {
            eprintln!("error: cannot read the bound address: {error}");
            return ExitCode::FAILURE;
        }
    }
    tracing::info!(
        shutdown_timeout = ?config.shutdown_timeout,
        cancel_timeout = ?config.cancel_timeout,
        max_concurrent = ?config.max_concurrent,
        max_tracked = config.max_tracked,
        max_connections = config.max_connections,
        "job server started"
    );

    // Cancelling `stop` closes the listener and finishes the open connections.
    let stop = CancellationToken::new();
    let server = console::serve(listener, app, serving, stop.clone().cancelled_owned());
    let mut server = tokio::spawn(server);

    let mut exit = ExitCode::SUCCESS;
    tokio::select! {
        () = shutdown_signal() => tracing::info!("signal received, shutting down"),
        ended = &mut server => {
            tracing::error!(?ended, "the HTTP server stopped on its own, shutting down");
            exit = ExitCode::FAILURE;
        }
    }

    // A second signal while draining: stop waiting.
    tokio::spawn(async {
        shutdown_signal().await;
        tracing::warn!("second signal received, exiting without waiting for the drain");
        std::process::exit(1);
    });

    // Close the listener and drain the worker at the same time: requests already on an open
    // connection are still answered (a submission gets 503), and neither waits for the other.
    stop.cancel();
    let report = worker.shutdown().await;
    log_report(&report);
    #[cfg(feature = "redis")]
    if let Some(mirror) = &mirror {
        cluster::close(mirror).await;
    }
    if tokio::time::timeout(HTTP_DRAIN_MARGIN, &mut server)
        .await
        .is_err()
    {
        tracing::warn!(margin = ?HTTP_DRAIN_MARGIN, "HTTP connections still open, closing them");
        server.abort();
    }
    exit
}

/// Registers the demo schedule `name`: a job of about 10 ms every `period`, logging its start
/// (with its tick and, with a mirror, its fencing token) and its end.
fn schedule_demo(worker: &Worker, name: &str, period: Duration) -> Result<(), ScheduleError> {
    worker.schedule(name, Schedule::every(period), |ctx, tick| async move {
        tracing::info!(
            job_id = %ctx.id(),
            scheduled_at = tick.scheduled_at_ms(),
            fencing_token = ?tick.fencing_token(),
            "scheduled run started"
        );
        tokio::time::sleep(SCHEDULED_WORK).await;
        tracing::info!(job_id = %ctx.id(), "scheduled run ended");
        Ok(())
    })?;
    tracing::info!(schedule = %name, ?period, "schedule registered");
    Ok(())
}

/// Completes on Ctrl-C, or on SIGTERM on Unix (what Kubernetes and `docker stop` send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Logs how every drained job ended, then prints the report as one JSON line on stdout.
fn log_report(report: &ShutdownReport) {
    for task in report.tasks() {
        tracing::info!(job_id = %task.id, outcome = ?task.outcome, "job drained");
    }
    tracing::info!(
        total = report.total(),
        completed = report.completed(),
        failed = report.failed(),
        cancelled = report.cancelled(),
        aborted = report.aborted(),
        elapsed = ?report.elapsed(),
        "shutdown complete"
    );
    match serde_json::to_string(report) {
        Ok(json) => println!("shutdown_report {json}"),
        Err(error) => tracing::error!(%error, "cannot serialize the shutdown report"),
    }
}
