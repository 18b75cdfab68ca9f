//! The slot's state machine: `Pending` → `Running` → one terminal status, and the telling of
//! each stage to observers, one teller at a time, until the terminal status settles.

use crate::sync::atomic::Ordering;
use crate::sync::tokio::task::JoinHandle;
use crate::sync::tokio::time::Instant;
use crate::sync::tokio_util::sync::CancellationToken;

use crate::mark::Mark;
use crate::status::TaskStatus;

use super::guarded::Inner;
use super::layout::Slot;
use super::state::{
    is_terminal, stage_of, ABORTED_AT_DEADLINE, DROPPED, PENDING, RUNNING, SETTLED, STATUS, STOP,
};
use super::waiters::Wakers;

/// What an observer is told about one stage of a slot, copied under the mutex.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// 1 pending, 2 running, 3 terminal.
    pub(crate) stage: u8,
    pub(crate) status: TaskStatus,
    pub(super) started: Option<Instant>,
    pub(super) finished: Option<Instant>,
}

/// What the caller of a transition has to do once the mutex is released.
#[must_use]
#[derive(Debug)]
pub(crate) enum After {
    /// Nothing.
    Nothing,
    /// The status settled: wake these waiters.
    Wake(Wakers),
    /// This thread tells observers now: call [`Slot::tell_next`] until it says done.
    Tell,
}

/// What [`Slot::finish`] took out of the slot, to drop and wake after the mutex is released.
#[must_use]
#[derive(Debug)]
pub(crate) struct Finished {
    /// The status index it had before (pending or running).
    pub(crate) from: u8,
    pub(crate) token: Option<CancellationToken>,
    pub(crate) join: Option<JoinHandle<()>>,
    pub(crate) after: After,
}

impl Slot {
    /// Tells observers about the `Pending` stage (the slot was just registered), if they are told
    /// at all (see [`Slot::new`]).
    pub(crate) fn pending(&self) -> After {
        let mut inner = self.lock();
        if inner.told > 0 {
            return After::Nothing;
        }
        self.after_change(&mut inner, true)
    }

    /// Moves a pending slot to `Running`. Refuses with `true` if the task was told to stop (it
    /// is to end cancelled), with `false` if it is terminal already.
    pub(crate) fn start(&self, now: Instant, telling: bool) -> Result<After, bool> {
        let mut inner = self.lock();
        let state = self.state();
        if state & STATUS != PENDING {
            return Err(false);
        }
        if state & STOP != 0 {
            return Err(true);
        }
        inner.started = Some(Mark::new(self.submitted, now));
        // Keep the flags (none is expected here: a task told to stop never gets this far).
        self.state.store(RUNNING | (state & !STATUS), Ordering::Release);
        Ok(self.after_change(&mut inner, telling))
    }

    /// Writes a terminal status over a pending or running slot. `None` if it is terminal already
    /// (the status it holds stays).
    pub(crate) fn finish(
        &self,
        status: TaskStatus,
        dropped: bool,
        now: Instant,
        telling: bool,
    ) -> Option<Finished> {
        debug_assert!(status.is_terminal());
        let mut inner = self.lock();
        let from = self.state();
        if is_terminal(from) {
            return None;
        }
        let mut state = status.index() | (from & (STOP | ABORTED_AT_DEADLINE));
        if dropped {
            state |= DROPPED;
        }
        if let TaskStatus::Failed(message) = status {
            inner.extra().message = Some(message.into_boxed_str());
        }
        inner.finished = Some(Mark::new(self.submitted, now));
        self.state.store(state, Ordering::Release);
        let token = inner.token.take();
        let join = inner.join.take();
        let after = self.after_change(&mut inner, telling);
        Some(Finished {
            from: from & STATUS,
            token,
            join,
            after,
        })
    }

    /// The next stage for the teller to tell, after it told `told` (`None` on its first call);
    /// or, when every stage is told, the waiters to wake if the status just settled.
    pub(crate) fn tell_next(&self, told: Option<u8>) -> Result<Snapshot, Option<Wakers>> {
        let mut inner = self.lock();
        if let Some(stage) = told {
            inner.told = stage;
        }
        let state = self.state();
        if inner.told >= stage_of(state) {
            inner.telling = false;
            return Err(match self.settle(&mut inner) {
                After::Wake(waiters) => Some(waiters),
                _ => None,
            });
        }
        let next = match inner.told {
            0 => 1,
            1 if inner.started.is_some() => 2,
            _ => 3,
        };
        let status = match next {
            1 => TaskStatus::Pending,
            2 => TaskStatus::Running,
            _ => self.status_from(state & STATUS, || inner.message()),
        };
        Ok(Snapshot {
            stage: next,
            status,
            started: self.instant(inner.started),
            finished: self.instant(inner.finished),
        })
    }

    /// After a change under the mutex: count it as told if nobody listens, leave it to the
    /// thread telling now if there is one, else make this thread the teller.
    fn after_change(&self, inner: &mut Inner, telling: bool) -> After {
        if !telling {
            inner.told = stage_of(self.state());
            return self.settle(inner);
        }
        if inner.telling {
            return After::Nothing; // the thread telling now picks this change up
        }
        inner.telling = true;
        After::Tell
    }

    /// Marks a terminal status settled, handing back the waiters to wake.
    fn settle(&self, inner: &mut Inner) -> After {
        let state = self.state();
        if !is_terminal(state) || state & SETTLED != 0 {
            return After::Nothing;
        }
        self.state.store(state | SETTLED, Ordering::Release);
        inner.take_waiters().map_or(After::Nothing, After::Wake)
    }
}
