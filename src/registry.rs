//! The registry: one `DashMap` from task id to the task's [`Slot`]. This is the only module that
//! touches the map or holds its guards.
//!
//! The map is touched when a task is submitted (one insert), looked up, listed or removed; never
//! while a task runs. A task's transitions after `submit` are written into its own slot (see
//! `slot/`), so tasks do not contend on the map's shard locks.
//!
//! Ids are hashed with std's SipHash under random keys (ids can come from users); each slot keeps
//! its id's hash, so the map hashes an id once per submission and once per lookup, never again
//! when its table grows (see `IdHash`).
//!
//! # Locking rules
//!
//! 1. Every method here is synchronous. A guard (`Ref`, `RefMut`, `Entry`, `RefMulti`) lives only
//!    inside one method body and is dropped before the method returns, so no guard can be held
//!    across an `.await` (clippy's `await_holding_invalid_type`, configured in `clippy.toml`,
//!    checks the rest of the crate).
//! 2. While a guard is held, nothing calls back into the map, and nothing runs code that might:
//!    no user code, no observer, no `JoinHandle` drop, no `CancellationToken` cancel (it wakes
//!    the tasks that watch it), no `tokio::spawn` (spawning on a runtime that is shutting down
//!    drops the future on the spot, and a task's drop guard writes its status). Slots that leave
//!    the map are handed back to the caller and dropped after the guard is gone, and so are the
//!    live slots [`Registry::live`] collects. (A slot in the map that is terminal holds no token
//!    and no join handle any more, so even its drop would take no lock.)
//! 3. Lock order: the retention queue (`retention.rs`) → one shard of the map → one slot's mutex.
//!    Never the other way round: nothing takes a shard lock while it holds a slot's mutex, and
//!    nothing takes the retention queue while it holds a shard.
//!
//! # Invariants
//!
//! - A slot is inserted as `Pending` before its task is spawned.
//! - A live (pending or running) slot is never removed or replaced: [`Registry::insert`] refuses
//!   its id and the removals skip it, both deciding under the shard lock; and a slot's status
//!   only moves forward (see `slot/mod.rs`), so a slot seen terminal under the lock stays terminal.
//! - Once [`Registry::close`] has returned, every insert is refused. The closed flag is read
//!   under the shard lock of the insert, and [`Registry::live`] visits every shard under its lock
//!   after the flag is set; so each insert is either refused or seen by a `live` call made after
//!   `close`.
//! - With a capacity, `tracked` is the number of entries: incremented (against the capacity)
//!   under the shard lock of a new entry, decremented with every removal. So entries never exceed
//!   the capacity.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

#[cfg(not(shuttle))]
use std::hash::{BuildHasher, DefaultHasher, RandomState};

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::dashmap::mapref::entry::{Entry, OccupiedEntry};
use crate::sync::dashmap::DashMap;

use crate::address_order;
use crate::slot::Slot;
use crate::status::TaskStatus;

/// A map key: the slot itself, hashed and compared by its id's bytes (looked up as `&[u8]`, so
/// that no lookup has to check the stored bytes are UTF-8). The id is stored once, in the slot,
/// and a lookup reads the id it compares and the status it returns from one allocation.
///
/// The map holds nothing else: its values are `()`, so a bucket is one pointer and the table of
/// 100k entries takes about 1.2 MB instead of 2.2 MB, fewer cache lines for lookups, inserts
/// and table growth to miss (see BENCHMARKS.md). Shuttle's model of the map hands back the
/// looked-up key, not the stored one, from an occupied entry, so under Shuttle the value is the
/// slot again (see [`Value`]); everything else reads the stored key.
// `Clone` for Shuttle's DashMap, whose iterators clone keys.
#[derive(Debug, Clone)]
struct Key(Arc<Slot>);

impl Borrow<[u8]> for Key {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.0.id_bytes()
    }
}

impl Hash for Key {
    #[cfg(not(shuttle))]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The hash of the id's bytes, worked out once when the slot was made (see `IdHash`): the
        // same value hashing the borrowed bytes gives, as `Borrow<[u8]>` requires.
        state.write_u128(u128::from(self.0.hash()));
    }

    /// Shuttle's DashMap has no hasher to choose: hash the bytes themselves.
    #[cfg(shuttle)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id_bytes().hash(state);
    }
}

/// The map's hasher: std's SipHash, keyed at random per registry (ids can come from users, so a
/// hash an attacker cannot aim at), for ids looked up by their bytes; and, for a stored key, the
/// hash of its id worked out once when its slot was made. A table that grows then moves its
/// entries without hashing any id again, or reading any slot.
///
/// `Key::hash` hands the cached hash over through `write_u128`, which hashing a `[u8]` never
/// calls (it writes a length, then the bytes).
#[cfg(not(shuttle))]
#[derive(Debug, Clone, Default)]
struct IdHash(RandomState);

#[cfg(not(shuttle))]
impl IdHash {
    /// The hash of an id's bytes, as a lookup of those bytes computes it.
    fn of(&self, id: &[u8]) -> u64 {
        self.hash_one(id)
    }
}

#[cfg(not(shuttle))]
impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            sip: self.0.build_hasher(),
            cached: None,
        }
    }
}

#[cfg(not(shuttle))]
#[derive(Debug)]
struct IdHasher {
    sip: DefaultHasher,
    cached: Option<u64>,
}

#[cfg(not(shuttle))]
impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.sip.write(bytes);
    }

    /// The length `[u8]` hashing writes first. Skipped: this hasher only ever hashes one id, and
    /// SipHash's last block carries the total length anyway, so ids of different lengths still
    /// hash apart; it saves a block per lookup.
    fn write_usize(&mut self, _len: usize) {}

    fn write_u128(&mut self, cached: u128) {
        // Only `Key::hash` calls this, with a hash that fits in 64 bits.
        self.cached = Some(cached as u64);
    }

    fn finish(&self) -> u64 {
        self.cached.unwrap_or_else(|| self.sip.finish())
    }
}

/// What the map stores beside each key: nothing (see [`Key`]).
#[cfg(not(shuttle))]
type Value = ();
/// Under Shuttle, the slot again: its model's occupied entry knows only the looked-up key.
#[cfg(shuttle)]
type Value = Arc<Slot>;

#[cfg(not(shuttle))]
type Map = DashMap<Key, Value, IdHash>;
#[cfg(shuttle)]
type Map = DashMap<Key, Value>;

/// The value stored with `slot`.
#[cfg(not(shuttle))]
fn value_of(_slot: &Arc<Slot>) -> Value {}

#[cfg(shuttle)]
fn value_of(slot: &Arc<Slot>) -> Value {
    Arc::clone(slot)
}

/// The slot stored in an occupied entry.
#[cfg(not(shuttle))]
fn occupant<'a>(occupied: &'a OccupiedEntry<'_, Key, Value>) -> &'a Arc<Slot> {
    &occupied.key().0
}

#[cfg(shuttle)]
fn occupant<'a>(occupied: &'a OccupiedEntry<'_, Key, Value>) -> &'a Arc<Slot> {
    occupied.get()
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.id_bytes() == other.0.id_bytes()
    }
}

impl Eq for Key {}

/// The registry of tracked tasks. See the module docs for the locking rules.
#[derive(Debug)]
pub(crate) struct Registry {
    map: Map,
    /// Set by `close`; read under the shard lock of every insert.
    closed: AtomicBool,
    capacity: Option<Capacity>,
}

#[derive(Debug)]
struct Capacity {
    limit: usize,
    tracked: AtomicUsize,
}

/// Why [`Registry::insert`] refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A pending or running task holds the id.
    Occupied,
    /// The id is new and the registry is at capacity.
    Full,
    /// The registry was closed.
    Closed,
}

/// How many entries of each terminal status a removal took out.
pub(crate) type Removed = [usize; 5];

impl Registry {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Self {
            #[cfg(not(shuttle))]
            map: DashMap::with_hasher(IdHash::default()),
            #[cfg(shuttle)]
            map: DashMap::new(),
            closed: AtomicBool::new(false),
            capacity: capacity.map(|limit| Capacity {
                limit,
                tracked: AtomicUsize::new(0),
            }),
        }
    }

    /// The hash of an id, for [`Slot::new`]: a slot carries it so that the map never hashes a
    /// stored id again.
    pub(crate) fn hash(&self, id: &[u8]) -> u64 {
        #[cfg(not(shuttle))]
        return self.map.hasher().of(id);
        #[cfg(shuttle)]
        {
            let _ = id;
            0
        }
    }

    /// Registers a pending slot under its id, replacing a terminal slot of the same id, which is
    /// returned (for the caller to drop and count).
    ///
    /// Refuses if the registry is closed, if a pending or running slot holds the id, or if a new
    /// entry would take the number of entries past the capacity (replacing a terminal entry needs
    /// no room).
    #[cfg_attr(
        not(shuttle),
        allow(
            clippy::unit_arg,
            reason = "the stored value is `()` outside Shuttle (see `Value`)"
        )
    )]
    pub(crate) fn insert(&self, slot: &Arc<Slot>) -> Result<Option<Arc<Slot>>, Refused> {
        match self.map.entry(Key(Arc::clone(slot))) {
            Entry::Occupied(occupied) => {
                if self.closed.load(Ordering::Acquire) {
                    return Err(Refused::Closed);
                }
                if !occupant(&occupied).is_terminal() {
                    return Err(Refused::Occupied);
                }
                let (Key(old), _) = occupied.replace_entry(value_of(slot));
                Ok(Some(old))
            }
            Entry::Vacant(vacant) => {
                if self.closed.load(Ordering::Acquire) {
                    return Err(Refused::Closed);
                }
                if let Some(capacity) = &self.capacity {
                    let room = |n: usize| (n < capacity.limit).then_some(n + 1);
                    if capacity
                        .tracked
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, room)
                        .is_err()
                    {
                        return Err(Refused::Full);
                    }
                }
                vacant.insert(value_of(slot));
                Ok(None)
            }
        }
    }

    /// Refuses every insert from now on. Returns `true` for the first call.
    pub(crate) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The current status of `id`.
    #[inline]
    pub(crate) fn status(&self, id: &str) -> Option<TaskStatus> {
        // Reading a failure message takes the slot's mutex under the shard guard: allowed (shard,
        // then slot).
        self.map.get(id.as_bytes()).map(|entry| entry.key().0.status())
    }

    /// The settled status of `id`, or its slot if it is not settled yet (for `wait`: a finished
    /// task costs no reference count).
    pub(crate) fn settled_or_slot(&self, id: &str) -> Option<Result<TaskStatus, Arc<Slot>>> {
        let entry = self.map.get(id.as_bytes())?;
        let slot = &entry.key().0;
        Some(slot.settled().ok_or_else(|| Arc::clone(slot)))
    }

    /// The slot registered under `id`.
    pub(crate) fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        self.map
            .get(id.as_bytes())
            .map(|entry| Arc::clone(&entry.key().0))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id.as_bytes())
    }

    /// Whether this very slot is still registered.
    pub(crate) fn holds(&self, slot: &Arc<Slot>) -> bool {
        self.map
            .get(slot.id_bytes())
            .is_some_and(|entry| Arc::ptr_eq(&entry.key().0, slot))
    }

    /// Number of tracked entries, whatever their status.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every slot whose status index passes `keep`. Guards are held one shard at a time and all
    /// are gone before this returns.
    pub(crate) fn slots(&self, mut keep: impl FnMut(u8) -> bool) -> Vec<Arc<Slot>> {
        let mut slots = Vec::with_capacity(self.map.len());
        for entry in self.map.iter() {
            let slot = &entry.key().0;
            if keep(slot.status_index()) {
                slots.push(Arc::clone(slot));
            }
        }
        slots
    }

    /// The slots of every pending or running task, in the order of their addresses (see
    /// `shutdown::stop_all`). Under the shards' guards the slots' states are only read and the
    /// live ones cloned; telling the tasks to stop is the caller's.
    ///
    /// The entries are sorted (a radix sort on the addresses, see `address_order.rs`) before
    /// any slot is read: reading the slots in the map's (hash) order makes each one a cache miss
    /// of its own, one after the other (each `Arc` clone is an atomic write, which waits for the
    /// reads before it); in address order they are read the way the hardware prefetches. Every
    /// shard's read guard is held until the slots are cloned; nothing else is done meanwhile
    /// (rule 2), and an insert waiting for a shard is refused anyway (the registry is closed
    /// before this is called).
    pub(crate) fn live(&self) -> Vec<Arc<Slot>> {
        let entries: Vec<_> = self.map.iter().collect();
        let mut slots: Vec<(usize, &Arc<Slot>)> = entries
            .iter()
            .map(|entry| {
                let slot = &entry.key().0;
                (Arc::as_ptr(slot).addr(), slot)
            })
            .collect();
        address_order::sort_by_address(&mut slots);
        let live = slots
            .into_iter()
            .filter(|(_, slot)| !slot.is_terminal())
            .map(|(_, slot)| Arc::clone(slot))
            .collect();
        drop(entries);
        live
    }

    /// Removes every terminal entry and says how many of each status were removed. Live entries
    /// stay, whatever this races with: the check and the removal happen under one shard lock.
    pub(crate) fn remove_finished(&self) -> Removed {
        let mut removed = Removed::default();
        self.map.retain(|Key(slot), _| {
            if !slot.is_terminal() {
                return true;
            }
            removed[usize::from(slot.status_index())] += 1;
            false
        });
        let total: usize = removed.iter().sum();
        if let Some(capacity) = &self.capacity {
            capacity.tracked.fetch_sub(total, Ordering::Relaxed);
        }
        // `retain` keeps the table's room; give it back once most of it is empty.
        if total > 0 && self.map.len().saturating_mul(4) < self.map.capacity() {
            self.map.shrink_to_fit();
        }
        removed
    }

    /// Removes this very slot if it is still registered and terminal, and returns it.
    pub(crate) fn remove_if_finished(&self, slot: &Arc<Slot>) -> Option<Arc<Slot>> {
        let (Key(removed), _) = self.map.remove_if(slot.id_bytes(), |Key(stored), _| {
            Arc::ptr_eq(stored, slot) && stored.is_terminal()
        })?;
        if let Some(capacity) = &self.capacity {
            capacity.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        Some(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored key hashes to the hash of its id's bytes, so lookups by bytes find it, also after
    /// the table grew many times over.
    #[cfg(not(shuttle))]
    #[test]
    fn stored_keys_and_looked_up_bytes_hash_alike() {
        let registry = Registry::new(None);
        let slots: Vec<Arc<Slot>> = (0..5_000)
            .map(|i| {
                let id = format!("task-{i}");
                let hash = registry.hash(id.as_bytes());
                Arc::new(Slot::new(id, hash, i, false, false))
            })
            .collect();
        for slot in &slots {
            let hasher = registry.map.hasher();
            assert_eq!(
                hasher.hash_one(Key(Arc::clone(slot))),
                hasher.hash_one(slot.id_bytes())
            );
            registry.insert(slot).unwrap();
        }
        for (i, slot) in slots.iter().enumerate() {
            let found = registry.slot(&format!("task-{i}")).unwrap();
            assert!(Arc::ptr_eq(&found, slot));
        }
        assert!(registry.slot("task-5000").is_none());
    }

    /// A bucket holds one pointer: finished entries can number in the millions, and lookups
    /// are faster while the table fits in a core's cache.
    #[cfg(not(shuttle))]
    #[test]
    fn a_bucket_holds_one_pointer() {
        assert_eq!(std::mem::size_of::<(Key, Value)>(), std::mem::size_of::<usize>());
    }
}
