//! The slot's state byte: the status index in the low bits, and flags above it. Written only
//! under the slot's mutex, read without it.

/// The status index (see `TaskStatus::index`) in the low bits of the state byte.
pub(super) const STATUS: u8 = 0b111;
/// The terminal status was written because the task's future was dropped before it finished:
/// it was aborted, or its runtime went away.
pub(super) const DROPPED: u8 = 1 << 3;
/// The terminal status has been told to every observer.
pub(super) const SETTLED: u8 = 1 << 4;
/// The task was told to stop (`cancel`, `shutdown`, the last handle dropped): whatever it returns
/// from now on, it is cancelled. Tasks from `submit` have no token: this flag and an abort stop
/// them.
pub(super) const STOP: u8 = 1 << 5;
/// The shutdown drain aborted the task at its deadline (it is reported `Aborted` if that is what
/// ended it).
pub(super) const ABORTED_AT_DEADLINE: u8 = 1 << 6;

pub(super) const PENDING: u8 = 0;
pub(super) const RUNNING: u8 = 1;

pub(super) fn stage_of(state: u8) -> u8 {
    match state & STATUS {
        PENDING => 1,
        RUNNING => 2,
        _ => 3,
    }
}

pub(super) fn is_terminal(state: u8) -> bool {
    state & STATUS > RUNNING
}
