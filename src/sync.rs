//! The concurrency primitives this crate is built on, in one place so that the Shuttle tests can
//! swap them.
//!
//! Normal builds use tokio, tokio-util, dashmap and `std::sync`. Built with
//! `RUSTFLAGS="--cfg shuttle"`, the same names point at Shuttle's instrumented versions, so the
//! tests in `tests/shuttle.rs` can explore thread interleavings of the real code (the way
//! tokio-util swaps in loom under `cfg(loom)`). Nothing else in the crate names those crates
//! directly.

#[cfg(not(shuttle))]
pub(crate) use std::sync::{atomic, Mutex, MutexGuard};
#[cfg(not(shuttle))]
pub(crate) use ::{dashmap, tokio, tokio_util};

#[cfg(shuttle)]
pub(crate) use shuttle::sync::{atomic, Mutex, MutexGuard};
#[cfg(shuttle)]
pub(crate) use {shuttle_dashmap as dashmap, shuttle_tokio as tokio, shuttle_tokio_util as tokio_util};
