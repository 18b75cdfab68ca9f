//! Memory per tracked entry, measured with a counting global allocator (`stats_alloc`).
//!
//! For 100k and 1M entries: the live heap bytes a `Worker` holds per *finished* entry (ids are
//! `task-0000000`, 12 bytes), then after `cleanup_finished_tasks`, then after the worker is
//! dropped. A bare `DashMap<String, u8>` with the same ids is measured the same way, before and
//! after `shrink_to_fit`, to show what the table keeps after a cleanup.
//!
//! The counts are requested bytes (`Layout::size`); the allocator's own per-block overhead (8 to
//! 16 bytes per allocation with glibc) comes on top. Not a criterion bench: it prints a table.

use std::alloc::System;
use std::hint::black_box;

use background_worker::Worker;
use dashmap::DashMap;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Tasks submitted before waiting for them, so the transient task memory stays small.
const BATCH: usize = 10_000;

fn live() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

fn id(i: usize) -> String {
    format!("task-{i:07}")
}

fn per(bytes: isize, n: usize) -> f64 {
    bytes as f64 / n as f64
}

fn worker(rt: &tokio::runtime::Runtime, n: usize) {
    let id_len = id(0).len();
    let before = live();
    let worker = Worker::new();
    rt.block_on(async {
        for start in (0..n).step_by(BATCH) {
            let end = (start + BATCH).min(n);
            for i in start..end {
                worker.submit(id(i), || async { Ok(()) }).await.expect("submit");
            }
            for i in start..end {
                black_box(worker.wait(&id(i)).await);
            }
        }
    });
    let finished = live() - before;
    assert_eq!(worker.task_count(), n);
    let removed = rt.block_on(worker.cleanup_finished_tasks());
    assert_eq!(removed, n);
    let cleaned = live() - before;
    drop(worker);
    let dropped = live() - before;
    println!(
        "worker   n={n:>9}: {:>7.1} B/finished entry ({:>6.1} B beyond the {id_len}-byte id); \
         after cleanup {:>10} B ({:>6.1} B per former entry); after drop {:>8} B",
        per(finished, n),
        per(finished, n) - id_len as f64,
        cleaned,
        per(cleaned, n),
        dropped,
    );
}

fn bare_map(n: usize) {
    let id_len = id(0).len();
    let before = live();
    let map: DashMap<String, u8> = DashMap::new();
    for i in 0..n {
        map.insert(id(i), 0);
    }
    let full = live() - before;
    map.retain(|_, _| false);
    let cleaned = live() - before;
    map.shrink_to_fit();
    let shrunk = live() - before;
    drop(map);
    println!(
        "dashmap  n={n:>9}: {:>7.1} B/entry         ({:>6.1} B beyond the {id_len}-byte id); \
         after retain  {:>10} B ({:>6.1} B per former entry); after shrink_to_fit {:>8} B",
        per(full, n),
        per(full, n) - id_len as f64,
        cleaned,
        per(cleaned, n),
        shrunk,
    );
}

fn main() {
    // `cargo bench -- FILTER` passes a filter: run only if it matches "memory".
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if !args.is_empty() && !args.iter().any(|arg| "memory".contains(arg.as_str())) {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("memory per tracked entry (live heap bytes, counting allocator)");
    for n in [100_000, 1_000_000] {
        worker(&rt, n);
        bare_map(n);
    }
}
