//! The schedule table of one worker: every schedule, and the queue of their next ticks, which
//! the one driver task (`driver.rs`) walks.
//!
//! Rules, all under the one mutex `Table::state`:
//! - An entry is in `queue` exactly when it is not paused and has a next tick, under the key
//!   `(due, name)`, `due` being its next tick plus that tick's jitter; `Entry::due` holds the
//!   key's time so that the key can be found again.
//! - An entry's `next` only moves forward: each tick of an entry is handed out at most once.
//! - The mutex is a leaf: nothing else is locked under it (no registry guard, no other
//!   mutex), no user code runs under it (bodies are made in their task), and it is never held
//!   across an `.await`.
//!
//! So one idle schedule costs one map entry and one key in an ordered set, and a worker with
//! schedules has one timer, the driver's, however many schedules it has.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::tokio::sync::Notify;
use crate::sync::tokio::time::Instant;
use crate::sync::tokio_util::sync::CancellationToken;
use crate::sync::Mutex;

use super::cadence::Cadence;
use super::claimer::ClaimerSlot;
use super::clock::Clock;
use super::config::{Missed, Overlap, Schedule};
use super::info::{LastRun, ScheduleInfo};
use super::tick::{jitter, Tick};
use crate::context::TaskContext;

/// A schedule's body factory, boxed: called once per run, in the run's task.
pub(crate) type Work =
    Arc<dyn Fn(TaskContext, Tick) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

/// Why [`Table::add`] refused.
#[derive(Debug)]
pub(crate) enum AddRefused {
    Duplicate,
    Stopped,
}

#[derive(Default)]
pub(crate) struct Table {
    state: Mutex<State>,
    /// Tells the driver the queue changed.
    pub(crate) wake: Notify,
    /// Stops the driver (shutdown, or the last `Worker` handle dropped).
    pub(crate) stop: CancellationToken,
    driver_spawned: AtomicBool,
    /// Who claims the ticks across a cluster, if anyone (`claimer.rs`).
    pub(crate) claimer: ClaimerSlot,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("schedules", &self.lock().entries.len())
            .field("stopped", &self.stop.is_cancelled())
            .finish()
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<Arc<str>, Entry>,
    queue: BTreeSet<(u64, Arc<str>)>,
    /// Made by the first schedule added.
    clock: Option<Clock>,
    next_epoch: u64,
    stopped: bool,
}

struct Entry {
    /// Unique per `add`: tells a re-added schedule from the one the driver took a tick from.
    epoch: u64,
    cadence: Cadence,
    overlap: Overlap,
    missed: Missed,
    /// The jitter's bound, in milliseconds.
    jitter: u64,
    timeout: Option<Duration>,
    work: Work,
    /// The next tick to hand out, if the cadence has one.
    next: Option<u64>,
    /// The time of this entry's key in the queue, while it is queued.
    due: Option<u64>,
    paused: bool,
    /// The latest run's id and tick.
    last: Option<(String, u64)>,
    runs: u64,
    skipped: u64,
    /// Ticks another replica claimed.
    elsewhere: u64,
}

impl Entry {
    /// When `tick` is to start: the tick plus its jitter.
    fn due_of(&self, name: &str, tick: u64) -> u64 {
        tick.saturating_add(jitter(name, tick, self.jitter))
    }

    /// Puts the entry into the queue for its next tick (unless paused or without a next tick).
    fn enqueue(&mut self, name: &Arc<str>, queue: &mut BTreeSet<(u64, Arc<str>)>) {
        debug_assert!(self.due.is_none());
        if self.paused {
            return;
        }
        if let Some(next) = self.next {
            let due = self.due_of(name, next);
            queue.insert((due, Arc::clone(name)));
            self.due = Some(due);
        }
    }

    fn dequeue(&mut self, name: &Arc<str>, queue: &mut BTreeSet<(u64, Arc<str>)>) {
        if let Some(due) = self.due.take() {
            queue.remove(&(due, Arc::clone(name)));
        }
    }
}

/// A tick the driver is to run now.
pub(crate) struct Due {
    pub(crate) tick: Tick,
    pub(crate) epoch: u64,
    pub(crate) work: Work,
    pub(crate) overlap: Overlap,
    pub(crate) timeout: Option<Duration>,
    /// The id of the entry's latest run, for the overlap check.
    pub(crate) last: Option<String>,
}

impl Table {
    fn lock(&self) -> crate::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a schedule whose first tick is the first after now. Returns whether the driver is
    /// still to be spawned (once per table).
    pub(crate) fn add(
        &self,
        name: Arc<str>,
        cadence: Cadence,
        schedule: &Schedule,
        work: Work,
    ) -> Result<bool, AddRefused> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.stopped {
            return Err(AddRefused::Stopped);
        }
        if state.entries.contains_key(&name) {
            return Err(AddRefused::Duplicate);
        }
        let now = state.clock.get_or_insert_with(Clock::new).now();
        let epoch = state.next_epoch;
        state.next_epoch += 1;
        let mut entry = Entry {
            epoch,
            next: cadence.next_after(now),
            cadence,
            overlap: schedule.overlap,
            missed: schedule.missed,
            jitter: u64::try_from(schedule.jitter.as_millis()).unwrap_or(u64::MAX),
            timeout: schedule.timeout,
            work,
            due: None,
            paused: false,
            last: None,
            runs: 0,
            skipped: 0,
            elsewhere: 0,
        };
        entry.enqueue(&name, &mut state.queue);
        state.entries.insert(name, entry);
        drop(guard);
        self.wake.notify_one();
        Ok(!self.driver_spawned.swap(true, Ordering::Relaxed))
    }

    /// Stops handing out ticks for `name` (runs already started go on). `false` if there is no
    /// such schedule.
    pub(crate) fn pause(&self, name: &str) -> bool {
        let mut state = self.lock();
        let State { entries, queue, .. } = &mut *state;
        let Some((name, entry)) = entry_mut(entries, name) else {
            return false;
        };
        entry.paused = true;
        entry.dequeue(&name, queue);
        true
    }

    /// Resumes a paused schedule; the ticks that fell during the pause are missed ticks (see
    /// [`Missed`]). `false` if there is no such schedule.
    pub(crate) fn resume(&self, name: &str) -> bool {
        let mut state = self.lock();
        let State {
            entries,
            queue,
            clock,
            ..
        } = &mut *state;
        let Some((name, entry)) = entry_mut(entries, name) else {
            return false;
        };
        if !entry.paused {
            return true;
        }
        entry.paused = false;
        let now = clock.as_ref().map_or(0, Clock::now);
        if let Some(next) = entry.next.filter(|&next| next <= now) {
            entry.next = match entry.missed {
                Missed::RunLatest => entry
                    .cadence
                    .latest_at_or_before(now)
                    .map(|latest| latest.max(next)),
                Missed::Skip => entry.cadence.next_after(now),
            };
        }
        entry.enqueue(&name, queue);
        drop(state);
        self.wake.notify_one();
        true
    }

    /// Removes a schedule (runs already started go on). `false` if there is no such schedule.
    pub(crate) fn remove(&self, name: &str) -> bool {
        let mut state = self.lock();
        let State { entries, queue, .. } = &mut *state;
        let Some((name, mut entry)) = entries.remove_entry(name) else {
            return false;
        };
        entry.dequeue(&name, queue);
        drop(state);
        // The body factory (and whatever it captured) is dropped here, unlocked.
        drop(entry);
        true
    }

    /// Stops the table for good: no schedule is added or ticks any more, and every schedule is
    /// dropped. Wakes the driver, which then returns.
    pub(crate) fn stop(&self) {
        let entries = {
            let mut state = self.lock();
            state.stopped = true;
            state.queue.clear();
            std::mem::take(&mut state.entries)
        };
        self.stop.cancel();
        drop(entries);
    }

    /// Takes every tick that is due now, by the schedules' policies, and returns them with the
    /// time (ms since the epoch) of the next key left in the queue.
    ///
    /// For each entry whose key is due: if the tick after its next one is due too, its next tick
    /// was missed (a pause, a stall), and [`Missed`] decides: the latest tick at or before now
    /// becomes its next (and runs in this same pass if its jitter allows), or the first after
    /// now does. Otherwise its next tick runs and the one after is queued.
    pub(crate) fn take_due(&self) -> (Vec<Due>, Option<u64>) {
        let mut state = self.lock();
        let State {
            entries,
            queue,
            clock,
            ..
        } = &mut *state;
        let Some(clock) = clock else {
            return (Vec::new(), None);
        };
        clock.reanchor();
        let now = clock.now();
        let mut due = Vec::new();
        while let Some((_, name)) = queue.first().filter(|(at, _)| *at <= now).cloned() {
            let Some(entry) = entries.get_mut(&name) else {
                // Unreachable by the rules above; dropping the key keeps the loop finite.
                queue.pop_first();
                continue;
            };
            entry.dequeue(&name, queue);
            let Some(tick) = entry.next else { continue };
            let after = entry.cadence.next_after(tick);
            if after.is_some_and(|after| entry.due_of(&name, after) <= now) {
                entry.next = match entry.missed {
                    Missed::RunLatest => entry
                        .cadence
                        .latest_at_or_before(now)
                        .map(|latest| latest.max(after.unwrap_or(latest))),
                    Missed::Skip => entry.cadence.next_after(now),
                };
                entry.enqueue(&name, queue);
                continue;
            }
            due.push(Due {
                tick: Tick::new(Arc::clone(&name), tick),
                epoch: entry.epoch,
                work: Arc::clone(&entry.work),
                overlap: entry.overlap,
                timeout: entry.timeout,
                last: entry.last.as_ref().map(|(id, _)| id.clone()),
            });
            entry.next = after;
            entry.enqueue(&name, queue);
        }
        (due, queue.first().map(|(at, _)| *at))
    }

    /// The tokio instant at which the wall clock reads `ms`.
    pub(crate) fn instant_at(&self, ms: u64) -> Instant {
        match &self.lock().clock {
            Some(clock) => clock.instant_at(ms),
            None => Instant::now(),
        }
    }

    /// Records a run the driver submitted for `due` (unless its schedule was removed since).
    pub(crate) fn ran(&self, due: &Due, id: String) {
        let at = due.tick.scheduled_at_ms();
        self.with_entry(due, |entry| {
            // Claimed ticks are submitted side by side: a slow claim must not move `last` back.
            if entry.last.as_ref().is_none_or(|(_, last)| *last <= at) {
                entry.last = Some((id, at));
            }
            entry.runs += 1;
        });
    }

    /// Records a tick the driver did not run.
    pub(crate) fn skipped(&self, due: &Due) {
        self.with_entry(due, |entry| entry.skipped += 1);
    }

    /// Records a tick another replica claimed.
    pub(crate) fn ran_elsewhere(&self, due: &Due) {
        self.with_entry(due, |entry| entry.elsewhere += 1);
    }

    fn with_entry(&self, due: &Due, update: impl FnOnce(&mut Entry)) {
        let mut state = self.lock();
        if let Some(entry) = state.entries.get_mut(due.tick.schedule()) {
            if entry.epoch == due.epoch {
                update(entry);
            }
        }
    }

    /// Snapshots of the schedules `keep` passes, sorted by name, without their last run's
    /// status (the caller reads it from the registry, with this lock released).
    pub(crate) fn infos(&self, mut keep: impl FnMut(&str) -> bool) -> Vec<ScheduleInfo> {
        let state = self.lock();
        let mut infos: Vec<ScheduleInfo> = state
            .entries
            .iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, entry)| ScheduleInfo {
                name: name.to_string(),
                cadence: entry.cadence.to_string(),
                next_run: if entry.paused {
                    None
                } else {
                    entry.next.map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
                },
                paused: entry.paused,
                last_run: entry.last.as_ref().map(|(id, at)| LastRun {
                    id: id.clone(),
                    scheduled_at: UNIX_EPOCH + Duration::from_millis(*at),
                    status: None,
                }),
                runs: entry.runs,
                skipped: entry.skipped,
                run_elsewhere: entry.elsewhere,
            })
            .collect();
        drop(state);
        infos.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// Up to `count` ticks of the schedule `name` before `before` (ms since the epoch) and not
    /// after now, newest first, from its cadence alone (whether or not they ran); `None` if
    /// there is no such schedule.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // the console's
    pub(crate) fn ticks_before(&self, name: &str, before: u64, count: usize) -> Option<Vec<u64>> {
        let state = self.lock();
        let entry = state.entries.get(name)?;
        let now = state.clock.as_ref().map_or(0, Clock::now);
        let mut ticks = Vec::new();
        let mut bound = before.saturating_sub(1).min(now);
        while ticks.len() < count {
            let Some(tick) = entry.cadence.latest_at_or_before(bound) else {
                break;
            };
            ticks.push(tick);
            let Some(earlier) = tick.checked_sub(1) else { break };
            bound = earlier;
        }
        Some(ticks)
    }

    /// Whether `name` is a schedule of this table.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.lock().entries.contains_key(name)
    }

    /// The number of schedules.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// The entry named `name` with its key (the queue's keys share the key's allocation).
fn entry_mut<'a>(entries: &'a mut HashMap<Arc<str>, Entry>, name: &str) -> Option<(Arc<str>, &'a mut Entry)> {
    let key = entries.get_key_value(name).map(|(key, _)| Arc::clone(key))?;
    let entry = entries.get_mut(&key)?;
    Some((key, entry))
}

/// The schedules of one worker, owned by the worker's shared state behind every handle.
/// Dropping it (the last `Worker` handle is gone) stops the driver and drops every schedule.
#[derive(Debug, Default)]
pub(crate) struct Schedules {
    pub(super) table: Arc<Table>,
}

impl Schedules {
    /// Stops every schedule for good (shutdown): no tick is submitted after this returns.
    pub(crate) fn stop(&self) {
        self.table.stop();
    }
}

impl Drop for Schedules {
    fn drop(&mut self) {
        self.table.stop();
    }
}
