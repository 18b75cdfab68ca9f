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
//! | `cron`  | no      | cron cadences for schedules ([`Schedule::cron`], [`Schedule::cron_in`]): seconds and IANA time zones, through `croner` and `chrono-tz` |
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
//! | `{ns}:job:<sha1(id)>` | hash | the record: `id`, `st` (status), `msg`, `rep` (replica), `inc` (the replica run's incarnation), `gen`, `stage`, `sub`/`start`/`end` (ms, replica clock), `upd` (ms, Redis clock), `pf`/`pd`/`pt`/`pm` (progress), `tok` (a claimed submission's fencing token); a TTL once finished |
//! | `{ns}:jobs` | sorted set | every job's id hash, scored by submission (ms): the paged listing |
//! | `{ns}:expiry` | sorted set | finished jobs' id hashes, scored by their record's expiry (Redis clock): what the trimmer drops from the listing |
//! | `{ns}:lease:<sha1(replica)>` | string, TTL | the replica run's incarnation, while its lease holds |
//! | `{ns}:dead:<sha1(replica)>:<incarnation>` | string, TTL 1 day | present once that run was found dead (final) |
//! | `{ns}:epoch` | hash | `rid` (Redis `run_id`), `since` (ms, Redis clock), `grace` (the longest lease seen, ms), `n` (counts the epochs) |
//! | `{ns}:seen:<sha1(replica)>` | string, TTL | the epoch (its `n`) the replica's lease was last renewed under |
//! | `{ns}:replicas` | hash | `<sha1(replica)>:<incarnation>` → name, for every run that may own unfinished jobs |
//! | `{ns}:owned:<sha1(replica)>:<incarnation>` | set | that run's unfinished jobs |
//! | `{ns}:events` | pub/sub channel | every written status change: `<status>:<len(replica)>:<replica><id>` (the console's cluster-wide `/events`) |
//! | `{ns}:cancel:<sha1(replica)>:<incarnation>` | hash, and a pub/sub channel | cancel requests for that run: id hash → `<generation>:<id>` |
//! | `{ns}:fence` | string | the last fencing token handed out in the namespace |
//!
//! **Fenced writes.** Every task state is written by one Lua script that compares it with the
//! stored record, atomically in Redis (each script lives in `src/redis/scripts/`, its header its
//! contract; the rules of the epoch and of a dead run are one shared piece that every judging
//! script includes). A dead run writes nothing. Within one submission (same replica run and
//! generation) only a later stage is written (pending < running < lost < completed / failed /
//! cancelled), so a terminal or `lost` record never goes back to running; a higher generation of the same run replaces a
//! lower one; between different replica runs (an id re-submitted elsewhere), the later submission
//! wins, by submission time, then replica name, then incarnation. So the old task's late write
//! never overwrites a re-submitted id's record. Generations are only compared within one run,
//! where they are ordered; the submission-time rule across replicas relies on their clocks
//! agreeing to better than the time between the two submissions.
//!
//! **Runs and leases.** Each process runs the mirror as a *run*: a random incarnation token
//! under its replica name. The run holds a lease in Redis (`lease`, default 10 s; renewed every
//! third of it, at least every second; expiry judged by Redis's clock).
//!
//! **A lease that expired ends its run, for good.** Once a run's lease has expired on Redis's
//! clock, the run is *dead*: the first script that looks at it (a read, a write, a renewal, a
//! cancel, the trimmer) decides so and writes the decision down (`{ns}:dead:…`), atomically in
//! Redis. From then on every job of that run that was not terminal is `lost` for every reader,
//! the owner's own API included (`RedisMirror::local_job`), and no later write of that run
//! changes any record: `lost` is final for that submission, like the other terminal statuses.
//! The replica finds out at its next renewal that reaches Redis (after a pause, a partition, or
//! a renewal that raced the expiry; at the latest one lease after it can reach Redis again; a
//! renewal tells a kept lease from one that lapsed and was re-created, so a healed partition is
//! never mistaken for a renewal). It then starts a new run for new work, cancels every task of
//! the dead run that still runs (logged at WARN with the count, counted in
//! `MirrorHealth::runs_lost` and `MirrorHealth::lost_tasks_cancelled`, and with `metrics`
//! in `background_worker_mirror_runs_lost_total` and
//! `background_worker_mirror_lost_tasks_cancelled_total`), and never writes them back as
//! running. A user who resubmits a `lost` job therefore never has it run twice *after* the
//! owner learned of the loss; between the expiry and that moment the old body may still run
//! (see self-fencing below).
//!
//! **Except when Redis itself restarted or forgot.** A restart (with or without its data), a
//! `FLUSHALL` or a failover is not a death of the replicas. The namespace has an *epoch*
//! (`{ns}:epoch`): the Redis `run_id` it was seen under, and when it began (Redis's clock). A
//! different `run_id` (a restart, even one that reloaded its data from AOF or RDB, which a
//! marker key alone would not see; a failover to another server process) or a missing epoch key
//! (a flush, a fresh empty Redis, or a namespace Redis never saw) starts a new epoch at that
//! moment. Until the epoch is one lease old (the longest lease seen since it began), no run is
//! judged dead, and a missing id is *not known yet* (`ClusterError::NotKnownYet` with the time
//! to wait; the demo answers `503` with `Retry-After`), never "not found". A run that finds its
//! lease forgotten takes it again and re-syncs its tasks from the registry.
//!
//! **An accepted cancel is kept.** `RedisMirror::cancel` stores a request for the owner only
//! while the owner's run is alive (one script): the owner applies it from the pub/sub message,
//! or from the stored flag at its next heartbeat. If the run is dead, the answer is the job as
//! `lost`, which none of that run's writes can turn into `completed` or `failed`; its owner
//! cancels it when it finds its run dead. Stored requests are deleted only with a dead run.
//!
//! **Health tells the truth promptly.** Every Redis call of the mirror's background tasks is
//! bounded by the smaller of the query timeout and the heartbeat (shorter than the lease), and
//! every failed or timed-out call marks the mirror `degraded` at once; `connected` also needs a
//! successful call within `min(lease, 2 s)`, and `lease_held` a renewal confirmed within one
//! lease, both on the replica's own clock.
//!
//! **Self-fencing** (`MirrorBuilder::self_fence`, off by default), for jobs that must never
//! overlap: a replica whose lease was not confirmed for `lease - margin` on its own clock
//! cancels its unfinished tasks itself, before anyone can declare them `lost`. The trade-off: a
//! Redis outage longer than that cancels work on every replica.
//!
//! **What the guarantees rest on.** Expiry and death are judged on Redis's clock only (the
//! scripts read `TIME`); the replicas' clocks only order submissions of one id across replicas
//! (the fence above) and time the replica's own health and self-fencing. A replica's own view of
//! its lease is safe only if its clock does not run slower than Redis's by more than the
//! self-fencing margin. Redis replicates asynchronously: on a failover, writes the old master
//! acknowledged but had not yet sent to its replica are lost; the epoch then makes the
//! forgetting visible as "not known yet" for one lease and the replicas re-sync, but a record
//! that was terminal there may come back from the new master as it was before (a dead run's
//! decision may be forgotten too; the run then finds its lease missing under a young epoch and
//! goes on as alive). Every lease renewal checks the epoch, so a run re-syncs at its first
//! renewal on the new master whether its lease was among the lost writes or not.
//!
//! **Nothing lost.** Transitions wait in a bounded queue while Redis is slow or down (one entry
//! per submission, its latest state), and are written when it answers. Past the bound, the mirror re-syncs from a snapshot of the
//! registry (`Worker::tasks`), and also whenever a new run begins or Redis forgot the lease. A
//! task that ended and was removed from the registry (by its retention) before such a re-sync is
//! marked `lost` if Redis had it as unfinished: the registry no longer knows how it ended.
//!
//! **Claimed submissions: one id, one owner across the cluster.** `RedisMirror::submit` and
//! `RedisMirror::submit_with_context` claim the id for the namespace in one script
//! (`claim.lua`) *before* the task is spawned: refused with `ClaimError::Held` (naming the
//! replica) while a job with that id is pending or running on a live run; granted again once it
//! is terminal or `lost`. The claim is the job's record itself, written `pending`: it is held by
//! the run's lease and by nothing else (no TTL of its own that could lapse under a running
//! job), so a dead run's claims die with it (its jobs read `lost`, by the shared rule of a dead
//! run). The local duplicate rule is checked before the claim; if the worker still refuses the
//! task after it (a race with a local `submit`, a shutdown, the capacity), the claim is taken
//! back atomically (`unclaim.lua`). While Redis cannot be reached a claim fails within the query
//! timeout (`ClaimError::Unavailable`) and nothing runs; for one lease after a Redis that forgot
//! (a restart, even from AOF, a flush, a failover; and on a namespace's first use: Redis cannot
//! tell these apart) no claim is granted, only refused as held or answered
//! `ClaimError::NotKnownYet` with the rest of the epoch's grace, because a live claim may be
//! about to be written back by its owner. The plain `Worker::submit` is untouched: exclusivity
//! holds among claimed submissions, and a plain submission elsewhere is seen by claims once
//! mirrored.
//!
//! **Fencing tokens.** Every claim gets a token from `{ns}:fence`: max(last + 1, Redis's clock
//! in µs), strictly greater than every earlier token in the namespace. The counter survives a
//! restart with AOF or RDB and a failover that kept it; without persistence, Redis's clock
//! (which does not step back) keeps new tokens above the old ones, and the epoch's grace keeps
//! a forgotten live claim from being granted twice meanwhile. The body gets the token
//! (`FencingToken`) to fence its own writes to other systems; every record carries it (`tok`,
//! `ClusterJob::fencing_token`); and the write script refuses a write whose token is lower than
//! the record's, and a plain write over a live claim.
//!
//! **Topologies.** Supported and tested: one Redis server (`redis://`, `rediss://`), and a
//! Redis Cluster (`redis+cluster://` or `rediss+cluster://` naming any one node, which need not
//! own the namespace's slot; through redis-rs's cluster support: every call goes to the master
//! of the namespace's one slot, keyless ones (`TIME`, `PING`, `INFO`) included, `MOVED` and
//! `ASK` are followed, and the slot map is refreshed after a failover). A cluster that is
//! moving or down (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`,
//! `LOADING`, no node for the slot) counts as Redis not answering: calls are retried, and
//! `MirrorHealth::connected` is `false` while the slot is down. On a Cluster, cancel messages
//! use classic pub/sub (Redis Cluster forwards it to every node) through a RESP3 cluster
//! connection that confirms its subscription every heartbeat (so it subscribes again on
//! another node after a failover), and the stored cancel flag works without it. A failover (a
//! replica promoted by `CLUSTER FAILOVER`, or after its master was killed) changes the serving
//! process's `run_id`, so it starts a new epoch: it is survived with the guarantees above for
//! a Redis that forgot, provided the replicas reach the new master within one lease (give the
//! lease more than the cluster's failover time: node timeout plus election). Sentinel is not
//! supported.
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
mod inspect;
mod latch;
mod mark;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod observe;
mod panic;
mod progress;
mod reaper;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod report;
mod retention;
mod run;
mod schedule;
mod shared;
mod shutdown;
mod slot;
mod status;
mod submit;
mod sync;
mod tracker;
mod worker;

#[cfg(feature = "redis")]
pub use crate::redis::{
    ClaimError, ClusterError, ClusterJob, ClusterStatus, FencingToken, InvalidCursor, MirrorBuilder,
    MirrorHealth, MirrorObserver, Page, PageCursor, RedisMirror, DEFAULT_LEASE, DEFAULT_NAMESPACE,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_RETENTION,
};
pub use builder::WorkerBuilder;
pub use config::DEFAULT_TIMEOUT;
pub use context::{Cancelled, TaskContext};
pub use error::{CancelError, SubmitError};
pub use info::{Health, NotAccepting, TaskEvent, TaskInfo};
pub use observe::{Observer, Transition};
pub use progress::Progress;
pub use report::{ShutdownReport, TaskOutcome, TaskReport};
#[cfg(feature = "cron")]
pub use schedule::CronError;
pub use schedule::{
    LastRun, Missed, Overlap, Schedule, ScheduleError, ScheduleInfo, Tick, MAX_SCHEDULE_NAME,
};
pub use status::TaskStatus;
pub use worker::Worker;

/// The README's Rust examples, compiled and run as doctests so the README cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The Rust examples of the operations guide (`docs/operations.md`), run as doctests.
#[cfg(all(doctest, feature = "metrics"))]
#[doc = include_str!("../docs/operations.md")]
struct OperationsGuideDoctests;

/// The Rust examples of the replicas guide (`docs/replicas.md`), run as doctests (against the
/// test suite's `redis-server` when `BACKGROUND_WORKER_REDIS_PORT` is set).
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../docs/replicas.md")]
struct ReplicasGuideDoctests;
