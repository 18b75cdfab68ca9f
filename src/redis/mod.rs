//! The Redis mirror (feature `redis`): one job view, cancel and liveness across the replicas of
//! a service. Built only on the public API of the worker (an [`Observer`](crate::Observer),
//! [`Worker::tasks`](crate::Worker::tasks), [`Worker::cancel`](crate::Worker::cancel)); the core
//! never imports it.
//!
//! Tasks, each in its own file: the observer (`observer.rs`) queues; the writer (`writer.rs`)
//! writes; the heartbeat (`heartbeat.rs`) holds the lease, reads stored cancels and samples
//! progress; the listener (`listener.rs`) takes cancels from pub/sub; the trimmer
//! (`trimmer.rs`) bounds the index and marks dead replicas' jobs lost. The Lua scripts and
//! their fences are in `scripts.rs`, the key layout in `keys.rs`.
//!
//! Invariants:
//! - Only the writer writes task states, and only through the fenced `WRITE` script.
//! - Nothing here runs on the worker's hot path: the observer only does a `try_send`.
//! - Every key of a namespace starts with the hash tag `{ns}`; ids and replica names enter
//!   keys only as SHA-1 hex.

mod builder;
mod error;
mod health;
mod heartbeat;
mod job;
mod keys;
mod listener;
mod mirror;
mod observer;
mod page;
mod query;
mod scripts;
mod trimmer;
mod update;
mod writer;

pub use builder::{
    MirrorBuilder, DEFAULT_LEASE, DEFAULT_NAMESPACE, DEFAULT_QUEUE_CAPACITY, DEFAULT_RETENTION,
};
pub use error::ClusterError;
pub use health::MirrorHealth;
pub use job::{ClusterJob, ClusterStatus};
pub use mirror::RedisMirror;
pub use observer::MirrorObserver;
pub use page::{InvalidCursor, Page, PageCursor};
