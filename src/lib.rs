//! Track named background tasks on tokio.
//!
//! Services spawn background work (report generation, syncs, job endpoints) and then need to
//! answer: *is job X still running? Did it fail, and why? Cancel it! Shut down cleanly on
//! SIGTERM.* A bare [`tokio::spawn`] answers none of that. A [`Worker`] does:
//!
//! - [`submit`](Worker::submit) runs a named task; its [`TaskStatus`] moves `Pending` → `Running`
//!   → `Completed` / `Failed(message)` / `Cancelled` and can be queried by name at any time.
//! - [`cancel`](Worker::cancel) signals the task's own [`CancellationToken`], waits a bounded time,
//!   then aborts it. Tasks from [`submit_with_context`](Worker::submit_with_context) watch their
//!   token through a [`TaskContext`] and wind down on their own.
//! - A panic inside a task becomes `Failed("panicked: ...")`; the worker and other tasks go on.
//! - [`shutdown`](Worker::shutdown) stops accepting work, cancels every task, drains them all
//!   concurrently with one timeout, and returns a [`ShutdownReport`].
//! - For operators: [`task_info`](Worker::task_info) (times and [`Progress`]),
//!   [`tasks`](Worker::tasks), [`health`](Worker::health), a stream of status changes from
//!   [`subscribe`](Worker::subscribe), and memory bounds through
//!   [`retain_finished_for`](WorkerBuilder::retain_finished_for),
//!   [`max_finished`](WorkerBuilder::max_finished) and [`max_tracked`](WorkerBuilder::max_tracked).
//!
//! `Worker` is a cheap `Clone` around one `Arc`: keep one in `main`, hand clones to your handlers.
//! It is built on locks (a `DashMap` registry), not on an actor: a status query is a hash lookup.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use background_worker::{TaskStatus, Worker};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let worker = Worker::new();
//!
//! worker.submit("nightly-report", || async {
//!     tokio::time::sleep(Duration::from_secs(2)).await;
//!     Ok(())
//! }).await?;
//! assert_eq!(worker.get_task_status("nightly-report").await, Some(TaskStatus::Pending));
//!
//! worker.submit_with_context("sync", |ctx| async move {
//!     ctx.cancelled().await; // runs until told to stop
//!     Ok(())
//! }).await?;
//!
//! assert_eq!(worker.wait("nightly-report").await, Some(TaskStatus::Completed));
//! assert_eq!(worker.cancel("sync").await?, TaskStatus::Cancelled);
//!
//! // On SIGTERM:
//! let report = worker.shutdown().await;
//! assert_eq!(report.total(), 0); // nothing was left running
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `serde` | no      | `Serialize` / `Deserialize` for [`TaskStatus`], [`TaskInfo`], [`Progress`], [`Health`], [`TaskEvent`] and [`ShutdownReport`] with its parts |
//! | `metrics` | no    | the worker's counters, gauges and histograms through the `metrics` facade, ready for Prometheus (module `metrics`, below) |
//! | `redis` | no      | `RedisMirror`: one job view, cancel and liveness across replicas, through Redis (below); needs Rust 1.88 |
//! | `axum`  | no      | module `console`: a jobs console to mount in an axum service (paged job API, cancel, health, Server-Sent Events, a dashboard) and hardened serving; implies `serde` |
//! | `redis-tls` | no  | `rediss://` for `redis`, through rustls (ring, webpki roots); a sub-feature because it takes a while to compile |
//!
//! # Observability
//!
//! - **Every transition, lossless:** an [`Observer`] registered on the builder sees every status
//!   change of every task, in order per task, never under a lock (unlike `subscribe`, which may
//!   lag and skip).
//! - **Metrics** (feature `metrics`): the module `metrics` lists what every worker emits through
//!   the `metrics` facade (tasks submitted and finished per status, live tasks, queue wait and
//!   run time histograms, shutdown outcomes), labelled by the worker's
//!   [`name`](WorkerBuilder::name) and never by a task id, and the recommended histogram
//!   buckets. Install the recorder before building the worker.
//! - **Tracing:** each task runs in a span `task` with the fields `task_id`, `worker` and
//!   `status` (recorded when it ends), and the ones OpenTelemetry bridges such as
//!   `tracing-opentelemetry` read: `otel.name = "background_worker.task"`, `otel.kind =
//!   "internal"`, and on a failed or panicked task `otel.status_code = "ERROR"` with the failure
//!   in `otel.status_message`. So an exporter shows one span per task, with its outcome.
//!
//! # Redis mirror
//!
//! With the `redis` feature, `RedisMirror` mirrors a worker's tasks into a Redis namespace, so
//! that every replica of a service can look up, list and cancel every replica's jobs, and the
//! jobs of a replica that died are reported `lost` instead of running forever. Redis is a mirror
//! and a message path, never on the hot path: `submit`, status queries, `cancel` and `shutdown`
//! never wait for it. See `RedisMirror` for the lifecycle and an example.
//!
//! **Key layout.** Every key of namespace `ns` starts with the hash tag `{ns}`, so they all live
//! in one Redis Cluster slot and every script is valid there. Ids and replica names are data:
//! they enter keys only as the SHA-1 of their bytes in hex (never escaped, never as they are),
//! and are stored in the records and checked on every write and read, so no id (`*`, `:`, `{`,
//! spaces, newlines, 64 KiB) can break the layout or reach another job's record, even through a
//! hash collision.
//!
//! | key | type | holds |
//! |-----|------|-------|
//! | `{ns}:job:<sha1(id)>` | hash | the record: `id`, `st` (status), `msg`, `rep` (replica), `inc` (the replica run's incarnation), `gen`, `stage`, `sub`/`start`/`end` (ms, replica clock), `upd` (ms, Redis clock), `pf`/`pd`/`pt`/`pm` (progress); a TTL once finished |
//! | `{ns}:jobs` | sorted set | every job's id hash, scored by submission (ms): the paged listing |
//! | `{ns}:expiry` | sorted set | finished jobs' id hashes, scored by their record's expiry (Redis clock): what the trimmer drops from the listing |
//! | `{ns}:lease:<sha1(replica)>` | string, TTL | the replica run's incarnation, while its lease holds |
//! | `{ns}:replicas` | hash | `<sha1(replica)>:<incarnation>` → name, for every run that may own unfinished jobs |
//! | `{ns}:owned:<sha1(replica)>:<incarnation>` | set | that run's unfinished jobs |
//! | `{ns}:cancel:<sha1(replica)>:<incarnation>` | hash, and a pub/sub channel | cancel requests for that run: id hash → `<generation>:<id>` |
//!
//! **Fenced writes.** Every task state is written by one Lua script that compares it with the
//! stored record, atomically in Redis. Within one submission (same replica run and generation)
//! only a later stage is written (pending < running < lost < completed / failed / cancelled), so
//! a terminal record never goes back to running; a higher generation of the same run replaces a
//! lower one; between different replica runs (an id re-submitted elsewhere), the later submission
//! wins, by submission time, then replica name, then incarnation. So the old task's late write
//! never overwrites a re-submitted id's record. Generations are only compared within one run,
//! where they are ordered; the submission-time rule across replicas relies on their clocks
//! agreeing to better than the time between the two submissions.
//!
//! **Liveness.** Each replica run holds its lease (`lease`, default 10 s, renewed every third of
//! it, expiry judged by Redis). A reader that finds an unfinished job whose owner's lease is gone
//! reports it `lost`; the trimmer of any replica then writes `lost` into the record. A replica
//! that goes through `Worker::shutdown` and then `RedisMirror::close` leaves every job terminal
//! and releases its lease.
//!
//! **Nothing lost.** Transitions wait in a bounded queue while Redis is slow or down, and are
//! written in order when it answers. Past the bound, the mirror re-syncs from a snapshot of the
//! registry (`Worker::tasks`), and also whenever it finds its lease gone (an expiry, or a Redis
//! that restarted empty). A task that ended and was removed from the registry (by its retention)
//! before such a re-sync is marked `lost` if Redis had it as unfinished: the registry no longer
//! knows how it ended.
//!
//! **Retention.** Finished records expire `retain_finished_for` after they finish (default 10
//! minutes: give it the worker's own retention); the listing is trimmed on a timer.
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken

// On docs.rs (nightly, `--cfg docsrs`): show which feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod address_order;
mod builder;
mod config;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod console;
mod context;
mod counters;
mod error;
mod id;
mod info;
mod latch;
mod mark;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod observe;
mod panic;
mod progress;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod report;
mod retention;
mod run;
mod shared;
mod shutdown;
mod slot;
mod status;
mod sync;
mod tracker;
mod worker;

#[cfg(feature = "redis")]
pub use crate::redis::{
    ClusterError, ClusterJob, ClusterStatus, InvalidCursor, MirrorBuilder, MirrorHealth, MirrorObserver,
    Page, PageCursor, RedisMirror, DEFAULT_LEASE, DEFAULT_NAMESPACE, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RETENTION,
};
pub use builder::WorkerBuilder;
pub use config::DEFAULT_TIMEOUT;
pub use context::{Cancelled, TaskContext};
pub use error::{CancelError, SubmitError};
pub use info::{Health, NotAccepting, TaskEvent, TaskInfo};
pub use observe::{Observer, Transition};
pub use progress::Progress;
pub use report::{ShutdownReport, TaskOutcome, TaskReport};
pub use status::TaskStatus;
pub use worker::Worker;

/// The README's Rust examples, compiled and run as doctests so the README cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
