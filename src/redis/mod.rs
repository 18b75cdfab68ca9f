//! The Redis mirror (feature `redis`): one job view, cancel and liveness across the replicas of
//! a service. Built only on the public API of the worker (an [`Observer`](crate::Observer),
//! [`Worker::tasks`](crate::Worker::tasks), [`Worker::cancel`](crate::Worker::cancel)); the core
//! never imports it.
//!
//! Layers, imports running downwards only (the core's `worker` → `run` → `shared` → `registry`):
//! 1. the handle: [`RedisMirror`] (`mirror.rs`), its builder (`builder.rs`) and the observer
//!    (`observer.rs`), which only queues;
//! 2. the background tasks, each in its own file: the writer (`writer.rs`) writes; the
//!    heartbeat (`heartbeat.rs`) holds the lease, reads stored cancels and samples progress;
//!    the listener (`listener.rs`) takes cancels from pub/sub; the trimmer (`trimmer.rs`)
//!    bounds the index and marks dead runs' jobs lost; beside them the cluster queries
//!    (`query.rs`), the lease calls (`lease.rs`), the cancel requests (`cancels.rs`) and the
//!    claims (`claim.rs`; the handle's claimed submissions are in `claims.rs`, the schedules'
//!    claimed ticks in `ticks.rs`);
//! 3. their shared state (`shared.rs`: settings, keys, scripts, the link with the observer),
//!    one Redis call as the mirror makes it (`call.rs`) and the connection, one node or a
//!    Redis Cluster (`conn.rs`);
//! 4. the data (`job.rs`, `update.rs`, `queue.rs`, `page.rs`, `health.rs`, `error.rs`, `settings.rs`), the
//!    key layout (`keys.rs`) and the Lua scripts (`scripts.rs`, one file each in `scripts/`).
//!
//! Invariants:
//! - Only the writer writes task states, and only through the fenced `WRITE` script.
//! - Nothing here runs on the worker's hot path: the observer only merges into a queue under
//!   a mutex it holds for that alone.
//! - Every key of a namespace starts with the hash tag `{ns}`; ids and replica names enter
//!   keys only as SHA-1 hex.

// The handle and its public parts.
mod builder;
mod claims;
mod lookup;
mod mirror;
mod observer;
// The background tasks and the queries, with the pieces they share.
mod cancels;
mod claim;
mod heartbeat;
mod lease;
mod listener;
mod query;
mod runs;
mod ticks;
mod trimmer;
mod writer;
// Their shared state.
mod call;
mod conn;
mod shared;
#[cfg(feature = "axum")]
pub(crate) use shared::ClusterEvent;
// The data, the key layout and the scripts.
mod error;
mod health;
mod job;
mod keys;
mod page;
mod queue;
mod scripts;
mod settings;
mod token;
mod update;

pub use builder::{
    MirrorBuilder, DEFAULT_LEASE, DEFAULT_NAMESPACE, DEFAULT_QUEUE_CAPACITY, DEFAULT_RETENTION,
};
pub use error::{ClaimError, ClusterError};
pub use health::MirrorHealth;
pub use job::{ClusterJob, ClusterStatus};
pub use mirror::RedisMirror;
pub use observer::MirrorObserver;
pub use page::{InvalidCursor, Page, PageCursor};
pub use token::FencingToken;
