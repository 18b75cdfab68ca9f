//! What a slot's mutex guards: times, the token and join handle of a live task, its waiters,
//! and the rarer parts (a failure message, progress, more waiters) boxed apart.

use std::task::Waker;

use crate::sync::tokio::task::JoinHandle;
use crate::sync::tokio_util::sync::CancellationToken;

use crate::mark::Mark;
use crate::progress::Progress;

#[derive(Debug)]
pub(super) struct Inner {
    /// When the body started and when the task ended, as marks since `Slot::submitted` (8 bytes
    /// each; the durations are worked out when someone asks).
    pub(super) started: Option<Mark>,
    pub(super) finished: Option<Mark>,
    /// The token of a task from `submit_with_context`, made when it is first asked for (see
    /// [`Slot::context_token`](super::Slot::context_token)) and dropped when the task ends. Tasks
    /// from `submit` have none: they are stopped by an abort (see
    /// [`Slot::stop`](super::Slot::stop)).
    pub(super) token: Option<CancellationToken>,
    /// Attached right after spawning; dropped when the task ends.
    pub(super) join: Option<JoinHandle<()>>,
    /// The first task waiting for the status to settle (see [`Slot::wait`](super::Slot::wait)); the
    /// others are in `extra`.
    pub(super) waiter: Option<(usize, Waker)>,
    /// What few slots need, boxed so that the others do not carry its room.
    pub(super) extra: Option<Box<Extra>>,
    /// An abort was asked for before the join handle was attached.
    pub(super) abort_requested: bool,
    /// How many stages observers have been told (0 to 3), and whether a thread is telling now.
    pub(super) told: u8,
    pub(super) telling: bool,
}

/// The rarer parts of a slot's state.
#[derive(Debug, Default)]
pub(super) struct Extra {
    /// The message of a `Failed` status.
    pub(super) message: Option<Box<str>>,
    pub(super) progress: Option<Progress>,
    /// Tasks waiting for the status to settle, after the first one.
    pub(super) waiters: Vec<(usize, Waker)>,
}

impl Inner {
    pub(super) fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    pub(super) fn message(&self) -> Option<Box<str>> {
        self.extra.as_ref().and_then(|extra| extra.message.clone())
    }
}
