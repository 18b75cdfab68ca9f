//! The [`Slot`] type: its fields and their layout, and the reads that take no lock (the status
//! but a failure message, the id) or only the mutex (the times).

use std::sync::PoisonError;
use std::time::SystemTime;

use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::tokio::time::Instant;
use crate::sync::{Mutex, MutexGuard};

use crate::id::ShortId;
use crate::mark::Mark;
use crate::status::TaskStatus;

use super::guarded::Inner;
use super::state::{is_terminal, PENDING, RUNNING, SETTLED, STATUS, STOP};

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
    pub(super) state: AtomicU8,
    /// A task from `submit_with_context`: it is stopped through its token (never aborted but at
    /// a timeout), and it can report progress. Set once, so read without the mutex (it sits in
    /// the state's padding).
    pub(super) context: bool,
    pub(super) id: ShortId,
    /// An id too long for `id`.
    pub(super) long_id: Option<Box<str>>,
    /// The id's hash in the registry (see `registry.rs`): read when the map's table grows.
    pub(super) hash: u64,
    pub(super) generation: u64,
    pub(super) submitted: Instant,
    /// Wall-clock submission time.
    pub(super) submitted_wall: SystemTime,
    pub(super) inner: Mutex<Inner>,
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

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn state(&self) -> u8 {
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

    /// Whether the task is one from `submit_with_context`.
    pub(crate) fn is_context(&self) -> bool {
        self.context
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
    pub(super) fn status_from(&self, index: u8, message: impl FnOnce() -> Option<Box<str>>) -> TaskStatus {
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
    pub(super) fn instant(&self, mark: Option<Mark>) -> Option<Instant> {
        mark.map(|mark| mark.at(self.submitted))
    }

    /// The wall-clock time of an instant, anchored at submission.
    pub(super) fn wall(&self, at: Instant) -> SystemTime {
        self.submitted_wall + at.saturating_duration_since(self.submitted)
    }

    /// When the task ended, if it did.
    pub(crate) fn finished_at(&self) -> Option<Instant> {
        self.instant(self.lock().finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finished entries can number in the millions: keep a slot small (see BENCHMARKS.md for the
    /// measured bytes per entry). 184 bytes, 200 with the `Arc`'s counts: one 208-byte chunk of
    /// glibc's allocator, where 192 took 224.
    #[test]
    fn a_slot_stays_small() {
        let size = std::mem::size_of::<Slot>();
        assert!(size <= 184, "a slot takes {size} bytes");
    }
}
