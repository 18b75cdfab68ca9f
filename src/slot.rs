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
//!   [`STOP_WAITER`] (a `Wait`'s key is an address, so even), once per task (`Waker::will_wake`).
//!   [`Slot::stop`] takes these out and they are woken after the mutex is released; so does
//!   the making of the task's token (the waits then go through the token, which the body may
//!   cancel itself), and the settling takes them with the rest. A dropped wait's entry stays
//!   until then: a body waiting again in a loop finds it and adds none.

use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use crate::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use crate::sync::tokio::task::{AbortHandle, JoinHandle};
use crate::sync::tokio::time::Instant;
use crate::sync::tokio_util::sync::CancellationToken;
use crate::sync::{Mutex, MutexGuard};

use crate::id::ShortId;
use crate::info::TaskInfo;
use crate::mark::Mark;
use crate::progress::Progress;
use crate::status::TaskStatus;

/// The status index (see [`TaskStatus::index`]) in the low bits of the state byte.
const STATUS: u8 = 0b111;
/// The terminal status was written because the task's future was dropped before it finished:
/// it was aborted, or its runtime went away.
const DROPPED: u8 = 1 << 3;
/// The terminal status has been told to every observer.
const SETTLED: u8 = 1 << 4;
/// The task was told to stop (`cancel`, `shutdown`, the last handle dropped): whatever it returns
/// from now on, it is cancelled. Tasks from `submit` have no token: this flag and an abort stop
/// them.
const STOP: u8 = 1 << 5;
/// The shutdown drain aborted the task at its deadline (it is reported `Aborted` if that is what
/// ended it).
const ABORTED_AT_DEADLINE: u8 = 1 << 6;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;

/// The key of a `TaskContext::cancelled` waiter in a slot's waiter list: odd, where a [`Wait`]'s
/// key is its (aligned, so even) address.
const STOP_WAITER: usize = 1;

/// The slot of one submission.
///
/// `repr(C)`, with the state first and the inline id right after it: a status lookup compares the
/// id and reads the state, and these start the slot's data (bytes 16 on of the `Arc`'s
/// allocation, which is 16-byte aligned). An id of up to 13 bytes then shares one 16-byte block
/// with the state, which never straddles two cache lines; with the id after an 8-byte-aligned
/// enum (its old place), a 12-byte id straddled two lines in every slot the allocator happened
/// to place at 32 bytes past a line, which in a run of equal-sized slots can be nearly all of
/// them (see BENCHMARKS.md).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Slot {
    state: AtomicU8,
    /// A task from `submit_with_context`: it is stopped through its token (never aborted but at
    /// a timeout), and it can report progress. Set once, so read without the mutex (it sits in
    /// the state's padding).
    context: bool,
    id: ShortId,
    /// An id too long for `id`.
    long_id: Option<Box<str>>,
    /// The id's hash in the registry (see `registry.rs`): read when the map's table grows.
    hash: u64,
    generation: u64,
    submitted: Instant,
    /// Wall-clock submission time.
    submitted_wall: SystemTime,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// When the body started and when the task ended, as marks since `Slot::submitted` (8 bytes
    /// each; the durations are worked out when someone asks).
    started: Option<Mark>,
    finished: Option<Mark>,
    /// The token of a task from `submit_with_context`, made when it is first asked for (see
    /// [`Slot::context_token`]) and dropped when the task ends. Tasks from `submit` have none:
    /// they are stopped by an abort (see [`Slot::stop`]).
    token: Option<CancellationToken>,
    /// Attached right after spawning; dropped when the task ends.
    join: Option<JoinHandle<()>>,
    /// The first task waiting for the status to settle (see [`Slot::wait`]); the others are in
    /// `extra`.
    waiter: Option<(usize, Waker)>,
    /// What few slots need, boxed so that the others do not carry its room.
    extra: Option<Box<Extra>>,
    /// An abort was asked for before the join handle was attached.
    abort_requested: bool,
    /// How many stages observers have been told (0 to 3), and whether a thread is telling now.
    told: u8,
    telling: bool,
}

/// The rarer parts of a slot's state.
#[derive(Debug, Default)]
struct Extra {
    /// The message of a `Failed` status.
    message: Option<Box<str>>,
    progress: Option<Progress>,
    /// Tasks waiting for the status to settle, after the first one.
    waiters: Vec<(usize, Waker)>,
}

impl Inner {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn message(&self) -> Option<Box<str>> {
        self.extra.as_ref().and_then(|extra| extra.message.clone())
    }

    /// Puts `waker` in place of the one registered under `key` unless both wake the same task;
    /// returns the one it replaced, to drop once the mutex is released.
    fn replace_waker(&mut self, key: usize, waker: &Waker) -> Option<Waker> {
        let stored = match &mut self.waiter {
            Some((first, stored)) if *first == key => stored,
            _ => {
                let extra = self.extra.as_mut()?;
                &mut extra.waiters.iter_mut().find(|(k, _)| *k == key)?.1
            }
        };
        if stored.will_wake(waker) {
            return None;
        }
        Some(std::mem::replace(stored, waker.clone()))
    }

    /// Takes out the waker registered under `key`, to drop once the mutex is released.
    fn remove_waker(&mut self, key: usize) -> Option<Waker> {
        if self.waiter.as_ref().is_some_and(|(first, _)| *first == key) {
            return self.waiter.take().map(|(_, waker)| waker);
        }
        let waiters = &mut self.extra.as_mut()?.waiters;
        let at = waiters.iter().position(|(k, _)| *k == key)?;
        Some(waiters.swap_remove(at).1)
    }

    /// Leaves `waker` to be woken at the stop, unless this task's waker is there already.
    fn add_stop_waiter(&mut self, waker: &Waker) {
        let present = |entry: &(usize, Waker)| entry.0 == STOP_WAITER && entry.1.will_wake(waker);
        if self.waiter.as_ref().is_some_and(present)
            || self
                .extra
                .as_ref()
                .is_some_and(|extra| extra.waiters.iter().any(present))
        {
            return;
        }
        let entry = (STOP_WAITER, waker.clone());
        match &self.waiter {
            None => self.waiter = Some(entry),
            Some(_) => self.extra().waiters.push(entry),
        }
    }

    /// Takes the stop waiters out (the others stay), to wake once the mutex is released.
    fn take_stop_waiters(&mut self) -> Option<Wakers> {
        let first = match &self.waiter {
            Some((STOP_WAITER, _)) => self.waiter.take().map(|(_, waker)| waker),
            _ => None,
        };
        let mut more = Vec::new();
        if let Some(extra) = self.extra.as_mut() {
            if extra.waiters.iter().any(|(key, _)| *key == STOP_WAITER) {
                let (stop, keep) = std::mem::take(&mut extra.waiters)
                    .into_iter()
                    .partition(|(key, _)| *key == STOP_WAITER);
                extra.waiters = keep;
                more = stop;
            }
        }
        (first.is_some() || !more.is_empty()).then_some(Wakers { first, more })
    }

    /// Takes every waiter out, to wake once the mutex is released; `None` if nobody waits.
    fn take_waiters(&mut self) -> Option<Wakers> {
        let first = self.waiter.take().map(|(_, waker)| waker);
        let more = self
            .extra
            .as_mut()
            .map(|extra| std::mem::take(&mut extra.waiters))
            .unwrap_or_default();
        (first.is_some() || !more.is_empty()).then_some(Wakers { first, more })
    }
}

/// The tasks waiting for a slot to settle (or, from [`Slot::stop`], for it to be told to stop),
/// taken out of it: woken by [`Wakers::wake`] once the slot's mutex is released.
#[must_use]
#[derive(Debug)]
pub(crate) struct Wakers {
    first: Option<Waker>,
    more: Vec<(usize, Waker)>,
}

impl Wakers {
    pub(crate) fn wake(self) {
        if let Some(waker) = self.first {
            waker.wake();
        }
        for (_, waker) in self.more {
            waker.wake();
        }
    }
}

/// What [`Slot::stop`] took out of the slot, to signal once the mutex is released.
#[must_use]
#[derive(Debug, Default)]
pub(crate) struct Stop {
    token: Option<CancellationToken>,
    waiters: Option<Wakers>,
}

impl Stop {
    /// Cancels the task's token, if it has one, and wakes the waits for its stop.
    pub(crate) fn signal(self) {
        if let Some(token) = self.token {
            token.cancel();
        }
        if let Some(waiters) = self.waiters {
            waiters.wake();
        }
    }
}

/// What [`Slot::poll_stopped`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StopPoll {
    /// The task was told to stop, or is over.
    Yes,
    /// Not yet: the waker is in the slot, [`Slot::stop`] wakes it.
    Waiting,
    /// Not yet, and the task has a token: wait on that (the body may cancel it itself).
    HasToken,
}

/// What an observer is told about one stage of a slot, copied under the mutex.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// 1 pending, 2 running, 3 terminal.
    pub(crate) stage: u8,
    pub(crate) status: TaskStatus,
    started: Option<Instant>,
    finished: Option<Instant>,
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

fn stage_of(state: u8) -> u8 {
    match state & STATUS {
        PENDING => 1,
        RUNNING => 2,
        _ => 3,
    }
}

fn is_terminal(state: u8) -> bool {
    state & STATUS > RUNNING
}

impl Slot {
    /// A pending slot, submitted now.
    ///
    /// `telling`: whether observers are to be told about it; if not, its `Pending` stage counts
    /// as told already.
    pub(crate) fn new(id: String, hash: u64, generation: u64, context: bool, telling: bool) -> Self {
        let (id, long_id) = ShortId::split(id);
        Self {
            id,
            long_id,
            hash,
            generation,
            state: AtomicU8::new(PENDING),
            context,
            submitted: Instant::now(),
            submitted_wall: SystemTime::now(),
            inner: Mutex::new(Inner {
                started: None,
                finished: None,
                token: None,
                join: None,
                waiter: None,
                extra: None,
                abort_requested: false,
                told: u8::from(!telling),
                telling: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn id(&self) -> &str {
        self.id.as_str(&self.long_id)
    }

    #[inline]
    pub(crate) fn id_bytes(&self) -> &[u8] {
        self.id.as_bytes(&self.long_id)
    }

    // Shuttle's DashMap hashes the bytes (see `registry.rs`).
    #[cfg_attr(shuttle, allow(dead_code))]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The status index, without the failure message.
    pub(crate) fn status_index(&self) -> u8 {
        self.state() & STATUS
    }

    pub(crate) fn is_terminal(&self) -> bool {
        is_terminal(self.state())
    }

    /// Whether the task was told to stop (see [`Slot::stop`]).
    pub(crate) fn stop_requested(&self) -> bool {
        self.state() & STOP != 0
    }

    /// Tells a live task to stop. It is marked (so that it never starts, and ends cancelled
    /// whatever it returns). A context task hands over, for the caller to signal once no lock
    /// is held ([`Stop::signal`]), its token if one was made and the waits for its stop
    /// ([`Slot::poll_stopped`]). The token is handed over rather than cloned: the slot has no
    /// more use for it (a token asked for after the mark is made cancelled), and a clone and a
    /// drop are a lock of the token's each. A task from `submit` is aborted (at its next
    /// `.await`, or at once if it waits to start).
    ///
    /// The abort is made under the mutex: it only marks the task and schedules it, it drops
    /// nothing and takes none of this crate's locks.
    pub(crate) fn stop(&self) -> Stop {
        let mut inner = self.lock();
        let state = self.state();
        if is_terminal(state) {
            return Stop::default();
        }
        self.state.store(state | STOP, Ordering::Release);
        if self.context {
            return Stop {
                token: inner.token.take(),
                waiters: inner.take_stop_waiters(),
            };
        }
        match &inner.join {
            Some(join) => join.abort(),
            None => inner.abort_requested = true,
        }
        Stop::default()
    }

    /// Whether a context task was told to stop or is over; if not, leaves `waker` to be woken
    /// when it is (see the rules above), unless the task has a token to wait on instead.
    ///
    /// Told to stop, a task is marked before anything else happens to it, so a body that looks
    /// once the stop began takes no lock.
    pub(crate) fn poll_stopped(&self, waker: &Waker) -> StopPoll {
        let stopped = |state: u8| state & STOP != 0 || is_terminal(state);
        if stopped(self.state()) {
            return StopPoll::Yes;
        }
        let mut inner = self.lock();
        if stopped(self.state()) {
            return StopPoll::Yes;
        }
        if inner.token.is_some() {
            return StopPoll::HasToken;
        }
        inner.add_stop_waiter(waker);
        StopPoll::Waiting
    }

    /// Whether the task was told to stop: marked by [`Slot::stop`], or its token cancelled (a
    /// context task's body can cancel its own token). Only a context task can have a token, so
    /// only for one is the mutex taken (this is asked at the end of every task).
    pub(crate) fn stopped(&self) -> bool {
        self.stop_requested()
            || (self.context
                && self
                    .lock()
                    .token
                    .as_ref()
                    .is_some_and(CancellationToken::is_cancelled))
    }

    /// The token of a task from `submit_with_context`, made on its first use: most bodies never
    /// look at theirs, and a token costs an allocation and a lock of its own. A task told to
    /// stop, or over, gets a cancelled one. Every call while the task is live and not told to
    /// stop gives the same token (the one [`Slot::stop`] cancels).
    pub(crate) fn context_token(&self) -> CancellationToken {
        let mut inner = self.lock();
        if let Some(token) = &inner.token {
            return token.clone();
        }
        let token = CancellationToken::new();
        let state = self.state();
        let mut waiters = None;
        if !is_terminal(state) {
            inner.token = Some(token.clone());
            // The waits for the stop wait on the token from now on: the body may cancel it.
            waiters = inner.take_stop_waiters();
        }
        drop(inner);
        // Cancelled, and the waits woken, outside the mutex (rule 2). A `stop` meanwhile cancels
        // it too: it was registered before the mutex was released.
        if is_terminal(state) || state & STOP != 0 {
            token.cancel();
        }
        if let Some(waiters) = waiters {
            waiters.wake();
        }
        token
    }

    /// Whether the task is one from `submit_with_context`.
    pub(crate) fn is_context(&self) -> bool {
        self.context
    }

    /// Aborts a task still live at the shutdown deadline, and remembers it did.
    pub(crate) fn abort_at_deadline(&self) {
        let mut inner = self.lock();
        let state = self.state();
        if is_terminal(state) {
            return;
        }
        self.state.store(state | ABORTED_AT_DEADLINE, Ordering::Release);
        match &inner.join {
            Some(join) => join.abort(),
            None => inner.abort_requested = true,
        }
    }

    /// Whether the shutdown drain's abort at the deadline is what ended the task.
    pub(crate) fn ended_by_deadline_abort(&self) -> bool {
        let state = self.state();
        state & ABORTED_AT_DEADLINE != 0 && state & DROPPED != 0
    }

    /// Inlined into the map lookup: every status but `Failed` is one load and a match; the
    /// failure message (the mutex) is read out of line.
    #[inline]
    pub(crate) fn status(&self) -> TaskStatus {
        let index = self.status_index();
        self.status_from(index, || self.failure_message())
    }

    #[cold]
    #[inline(never)]
    fn failure_message(&self) -> Option<Box<str>> {
        self.lock().message()
    }

    #[inline]
    fn status_from(&self, index: u8, message: impl FnOnce() -> Option<Box<str>>) -> TaskStatus {
        match index {
            PENDING => TaskStatus::Pending,
            RUNNING => TaskStatus::Running,
            2 => TaskStatus::Completed,
            3 => TaskStatus::Failed(message().map(String::from).unwrap_or_default()),
            _ => TaskStatus::Cancelled,
        }
    }

    /// The terminal status, once it is settled (told to every observer).
    pub(crate) fn settled(&self) -> Option<TaskStatus> {
        (self.state() & SETTLED != 0).then(|| self.status())
    }

    /// The instant a mark of this slot stands for.
    fn instant(&self, mark: Option<Mark>) -> Option<Instant> {
        mark.map(|mark| mark.at(self.submitted))
    }

    /// The wall-clock time of an instant, anchored at submission.
    fn wall(&self, at: Instant) -> SystemTime {
        self.submitted_wall + at.saturating_duration_since(self.submitted)
    }

    /// Keeps the join handle of the freshly spawned task, aborting it if that was asked for
    /// meanwhile. Returns it instead if the task already ended, for the caller to drop.
    pub(crate) fn attach(&self, join: JoinHandle<()>) -> Option<JoinHandle<()>> {
        let mut inner = self.lock();
        if inner.abort_requested {
            join.abort();
        }
        if self.is_terminal() {
            return Some(join);
        }
        inner.join = Some(join);
        None
    }

    /// Aborts the task: returns its abort handle, or remembers to abort it when its join handle
    /// is attached.
    pub(crate) fn abort(&self) -> Option<AbortHandle> {
        let mut inner = self.lock();
        match &inner.join {
            Some(join) => Some(join.abort_handle()),
            None => {
                inner.abort_requested = true;
                None
            }
        }
    }

    /// Waits until the status is settled and returns it.
    ///
    /// `yield_first`: yield once before parking (see [`Wait`]'s `poll`), for `wait`, whose
    /// callers often wait for many tasks in a row. Not for `cancel`: the task it just told to
    /// stop is the one to run next, and a yield on a multi-thread runtime also wakes an idle
    /// worker thread to steal it (measured: a `cancel` of a `submit` task took 1.9 µs with
    /// the yield, 0.6 µs without).
    ///
    /// Cancel safe: dropping the future loses nothing, and leaves no waker behind.
    pub(crate) fn wait(&self, yield_first: bool) -> Wait<'_> {
        Wait {
            slot: self,
            yielded: AtomicBool::new(!yield_first),
            registered: AtomicBool::new(false),
            _pinned: PhantomPinned,
        }
    }

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

    /// Reports progress; ignored once the task is terminal, and for tasks from `submit`.
    pub(crate) fn set_progress(&self, progress: Progress) {
        let mut inner = self.lock();
        if self.context && !self.is_terminal() {
            inner.extra().progress = Some(progress);
        }
    }

    /// When the task ended, if it did.
    pub(crate) fn finished_at(&self) -> Option<Instant> {
        self.instant(self.lock().finished)
    }

    /// A snapshot for `task_info` and `tasks`.
    pub(crate) fn info(&self, now: Instant) -> TaskInfo {
        let inner = self.lock();
        let index = self.status_index();
        let status = self.status_from(index, || inner.message());
        let (started, finished) = (self.instant(inner.started), self.instant(inner.finished));
        let queued_until = started.or(finished).unwrap_or(now);
        TaskInfo {
            id: self.id().to_owned(),
            generation: self.generation,
            status,
            submitted_at: self.wall(self.submitted),
            started_at: started.map(|at| self.wall(at)),
            finished_at: finished.map(|at| self.wall(at)),
            queued: queued_until.saturating_duration_since(self.submitted),
            run_time: started.map(|at| finished.unwrap_or(now).saturating_duration_since(at)),
            progress: inner.extra.as_ref().and_then(|extra| extra.progress.clone()),
        }
    }

    /// The parts of a [`Transition`](crate::Transition) for a snapshot of this slot.
    ///
    /// Worked out from durations (one clock subtraction per duration, one wall-clock addition),
    /// as this runs for every transition when observers listen.
    pub(crate) fn transition_times(&self, snapshot: &Snapshot) -> TransitionTimes {
        let since = |later: Option<Instant>, earlier: Instant| {
            later.map_or(Duration::ZERO, |later| later.saturating_duration_since(earlier))
        };
        let (queued, run_time) = match (snapshot.stage, snapshot.started) {
            (1, _) => (None, None),
            (2, started) => (Some(since(started, self.submitted)), None),
            (_, Some(started)) => (
                Some(started.saturating_duration_since(self.submitted)),
                Some(since(snapshot.finished, started)),
            ),
            (_, None) => (Some(since(snapshot.finished, self.submitted)), None),
        };
        let elapsed = queued.unwrap_or_default() + run_time.unwrap_or_default();
        TransitionTimes {
            at: self.submitted_wall + elapsed,
            submitted_at: self.submitted_wall,
            queued,
            run_time,
        }
    }
}

/// The future of [`Slot::wait`].
///
/// `!Unpin`: once polled it stays where it is until dropped, so its address identifies its
/// waker in the slot (no other live wait can have the same address).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Wait<'a> {
    slot: &'a Slot,
    /// Whether this future yielded once already, and whether its waker is in the slot. Set
    /// through a shared reference, as a pinned `!Unpin` future is only reached through one
    /// without `unsafe`; atomic (and uncontended), so that the future stays `Sync` as well as
    /// `Send`.
    yielded: AtomicBool,
    registered: AtomicBool,
    _pinned: PhantomPinned,
}

impl Wait<'_> {
    fn key(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}

impl Future for Wait<'_> {
    type Output = TaskStatus;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskStatus> {
        // A waker this poll replaces: dropped after the guard (locals drop in reverse order).
        let _replaced: Option<Waker>;
        let key = self.key();
        let slot = self.slot;
        // Before it first parks, a `wait` yields once (it wakes itself, which tokio takes as a
        // yield: the task goes to the back of the run queue instead of its LIFO slot). Tasks
        // already queued, often the very one waited for, run first, so a task waiting for many
        // in a row usually finds each settled instead of being woken by each in turn.
        if !self.yielded.load(Ordering::Relaxed) && slot.state() & SETTLED == 0 {
            self.yielded.store(true, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut inner = slot.lock();
        let state = slot.state();
        if state & SETTLED != 0 {
            // Settling took every waker out: nothing of this future is left in the slot.
            self.registered.store(false, Ordering::Relaxed);
            let status = slot.status_from(state & STATUS, || inner.message());
            return Poll::Ready(status);
        }
        if self.registered.load(Ordering::Relaxed) {
            _replaced = inner.replace_waker(key, cx.waker());
        } else {
            _replaced = None;
            let entry = (key, cx.waker().clone());
            match &inner.waiter {
                None => inner.waiter = Some(entry),
                Some(_) => inner.extra().waiters.push(entry),
            }
            self.registered.store(true, Ordering::Relaxed);
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if !self.registered.load(Ordering::Relaxed) {
            return;
        }
        let key = self.key();
        // Dropped after the guard.
        let _removed = self.slot.lock().remove_waker(key);
    }
}

/// The times of one transition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransitionTimes {
    pub(crate) at: SystemTime,
    pub(crate) submitted_at: SystemTime,
    pub(crate) queued: Option<Duration>,
    pub(crate) run_time: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(slot: &Slot) -> Vec<usize> {
        let inner = slot.lock();
        let more = inner.extra.iter().flat_map(|extra| &extra.waiters);
        inner.waiter.iter().chain(more).map(|(key, _)| *key).collect()
    }

    #[test]
    fn a_task_waiting_for_its_stop_again_leaves_one_waker_which_the_stop_takes_alone() {
        struct Task;
        impl std::task::Wake for Task {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let slot = Slot::new("job".to_owned(), 0, 0, true, false);
        let waker = &Waker::from(std::sync::Arc::new(Task));
        // A `Wait` for the status, registered first, under its (even) address.
        slot.lock().waiter = Some((8, waker.clone()));

        assert_eq!(slot.poll_stopped(waker), StopPoll::Waiting);
        assert_eq!(slot.poll_stopped(waker), StopPoll::Waiting);
        assert_eq!(
            keys(&slot),
            [8, STOP_WAITER],
            "the same task's waker was added twice"
        );

        let stop = slot.stop();
        assert!(stop.waiters.is_some() && stop.token.is_none());
        assert_eq!(keys(&slot), [8], "the stop took the wrong wakers");
        assert_eq!(slot.poll_stopped(waker), StopPoll::Yes);
    }

    /// Finished entries can number in the millions: keep a slot small (see BENCHMARKS.md for the
    /// measured bytes per entry). 184 bytes, 200 with the `Arc`'s counts: one 208-byte chunk of
    /// glibc's allocator, where 192 took 224.
    #[test]
    fn a_slot_stays_small() {
        let size = std::mem::size_of::<Slot>();
        assert!(size <= 184, "a slot takes {size} bytes");
    }
}
