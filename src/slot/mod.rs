//! One task's own state: its status, times, progress, and what only a live task needs (its
//! token, its join handle, its waiters). The registry maps ids to slots; after `submit`, a task
//! touches only its own slot, never the map.
//!
//! # Rules
//!
//! - The status lives in an atomic byte, written only under the slot's mutex and read without
//!   it, so a status lookup takes no lock (but a failure message's, which is read under the
//!   mutex).
//! - The mutex is the innermost lock of the crate: it may be taken while a registry shard guard
//!   is held, never the other way round, and no other lock of this crate is taken while it is
//!   held. Nothing under it runs user code, drops a token or a join handle, or wakes anyone:
//!   those are handed back to the caller to do after the mutex is released. The one call into
//!   tokio under it is `JoinHandle::abort`, which marks the task and schedules it, and drops and
//!   runs nothing.
//! - A task told to stop (`cancel`, `shutdown`, the last handle dropped) is marked with a flag in
//!   the state byte before anything else happens to it: it never starts, and whatever it
//!   returns, it ends `Cancelled`. A task from `submit` has no token; the flag and an abort stop
//!   it.
//! - The status only moves forward: `Pending` → `Running` → one terminal status, or `Pending` →
//!   one terminal status. A terminal status never changes ([`Slot::finish`] refuses to write over
//!   one).
//! - Observers are told of the slot's stages (pending, running, terminal) in order, by one thread
//!   at a time: whoever changes the status while nobody is telling becomes the teller and tells
//!   every stage not told yet, releasing the mutex around each call; a change made meanwhile is
//!   picked up by the teller. A terminal status is *settled* once it has been told; `wait` and
//!   `cancel` return settled statuses only.
//! - A task waiting for the slot to settle ([`Slot::wait`]) yields once, then leaves its `Waker`
//!   in the slot, under the mutex, keyed by the address of its pinned wait future, and takes it
//!   out again if that future is dropped first; settling takes every waker out under the mutex,
//!   and they are woken after it is released. A check and a registration happen under one
//!   lock, so no wake-up is lost, and a dropped wait leaves nothing behind. (One waiter, the
//!   usual case, needs no allocation; `tokio::sync::Notify` cost an `Arc` and its own lock per
//!   parked wait.)
//! - A context task's body waiting for its stop ([`Slot::poll_stopped`], behind
//!   `TaskContext::cancelled`) leaves its `Waker` in the same list, under the odd key
//!   [`STOP_WAITER`](waiters::STOP_WAITER) (a `Wait`'s key is an address, so even), once per task
//!   (`Waker::will_wake`). [`Slot::stop`] takes these out and they are woken after the mutex is
//!   released; so does the making of the task's token (the waits then go through the token, which
//!   the body may cancel itself), and the settling takes them with the rest. A dropped wait's entry
//!   stays until then: a body waiting again in a loop finds it and adds none.

mod guarded;
mod info;
mod layout;
mod state;
mod stop;
mod transition;
mod wait;
mod waiters;

pub(crate) use self::layout::Slot;
pub(crate) use self::stop::StopPoll;
pub(crate) use self::transition::{After, Snapshot};
