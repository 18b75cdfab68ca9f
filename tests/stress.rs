//! Multi-thread stress (issue 6, item 2).
//!
//! Several driver tasks on a multi-thread runtime issue random operations (submit with assorted
//! bodies, cancel, wait, status, cleanup) on a small set of shared ids, while a monitor samples
//! every id's status and one driver shuts the worker down part-way through. Checked, against the
//! invariants in `src/registry.rs`:
//!
//! - a terminal status never changes, and no status moves backwards (`Running` to `Pending`, or
//!   an entry appearing or turning live) unless a submission for that id overlapped the two
//!   samples (the monitor knows, from per-id counters of submit calls begun and returned);
//! - every `cancel` and `wait` answers with a terminal status (or `NotFound`/`None`);
//! - every accepted submission ends terminal: after `shutdown` returns every entry is terminal,
//!   and no body is alive, and none is polled afterwards;
//! - a submit begun after `shutdown` returned is refused, and its closure is never called;
//! - counts agree with the entries at the end, cleanup removes everything, and every closure
//!   (called or not) and its captures are dropped (`Arc::strong_count` back to 1);
//! - the whole round finishes under a real-time watchdog: a deadlock fails the test.
//!
//! Bounded by default (a few seconds); `STRESS=1` runs many more rounds and operations.

mod reliability;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use background_worker::{CancelError, SubmitError, TaskStatus, Worker};
use reliability::{quiet_intended_panics, repeat, watchdog, Probe, Rng, INTENDED};

const IDS: [&str; 5] = ["s0", "s1", "s2", "s3", "s4"];

/// Everything the drivers and the monitor share.
#[derive(Debug, Default)]
struct Book {
    /// Per id: submit calls begun, and submit calls returned.
    begun: [AtomicU64; IDS.len()],
    returned: [AtomicU64; IDS.len()],
    accepted: AtomicUsize,
    refused: AtomicUsize,
    /// Closures dropped, called or not (each captures a [`Dropped`]).
    dropped: AtomicUsize,
    violations: Mutex<Vec<String>>,
}

impl Book {
    fn violation(&self, message: String) {
        let mut violations = self.violations.lock().unwrap();
        if violations.len() < 20 {
            violations.push(message);
        }
    }
}

/// Captured by every closure: counts its drop, and holds a clone of the round's `capture`.
struct Dropped {
    book: Arc<Book>,
    _capture: Arc<()>,
}

impl Drop for Dropped {
    fn drop(&mut self) {
        self.book.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A random body; `ctx` tells whether it was submitted with a context.
async fn body(kind: u64, mut rng: Rng, ctx: Option<background_worker::TaskContext>) -> anyhow::Result<()> {
    match kind {
        0 => Ok(()),
        1 => anyhow::bail!("stress error"),
        2 => panic!("{INTENDED}: stress"),
        3 => std::panic::panic_any(7_u8),
        4 => {
            tokio::time::sleep(rng.millis(5)).await;
            Ok(())
        }
        5 => {
            // Ignores cancellation (when submitted with a context).
            tokio::time::sleep(rng.millis(25)).await;
            Ok(())
        }
        6 => {
            // Winds down slowly when told.
            let work = rng.millis(20);
            let wind = rng.millis(15);
            match ctx {
                Some(ctx) => tokio::select! {
                    () = ctx.cancelled() => tokio::time::sleep(wind).await,
                    () = tokio::time::sleep(work) => {}
                },
                None => tokio::time::sleep(work).await,
            }
            anyhow::bail!("wound down")
        }
        7 => {
            // Blocks its runtime thread for a moment.
            std::thread::sleep(rng.millis(2));
            Ok(())
        }
        _ => {
            for _ in 0..rng.below(50) {
                tokio::task::yield_now().await;
            }
            Ok(())
        }
    }
}

struct Round {
    worker: Worker,
    probe: Arc<Probe>,
    book: Arc<Book>,
    capture: Arc<()>,
}

async fn submit(round: &Round, index: usize, rng: &mut Rng) -> Result<(), SubmitError> {
    let id = IDS[index];
    let kind = rng.below(9);
    let seed = rng.next();
    let probe = Arc::clone(&round.probe);
    let dropped = Dropped {
        book: Arc::clone(&round.book),
        _capture: Arc::clone(&round.capture),
    };
    let after_shutdown = round.probe.shutdown_returned.load(Ordering::SeqCst);
    round.book.begun[index].fetch_add(1, Ordering::SeqCst);
    let result = if rng.chance(2) {
        round
            .worker
            .submit_with_context(id, move |ctx| {
                let _dropped = dropped;
                probe.watch(body(kind, Rng::new(seed), Some(ctx)))
            })
            .await
    } else {
        round
            .worker
            .submit(id, move || {
                let _dropped = dropped;
                probe.watch(body(kind, Rng::new(seed), None))
            })
            .await
    };
    round.book.returned[index].fetch_add(1, Ordering::SeqCst);
    match &result {
        Ok(()) => {
            round.book.accepted.fetch_add(1, Ordering::SeqCst);
            if after_shutdown {
                round
                    .book
                    .violation(format!("{id}: submit accepted after shutdown returned"));
            }
        }
        Err(SubmitError::DuplicateId { .. } | SubmitError::ShuttingDown { .. }) => {
            round.book.refused.fetch_add(1, Ordering::SeqCst);
        }
        Err(other) => round
            .book
            .violation(format!("{id}: unexpected submit error {other:?}")),
    }
    result
}

async fn driver(round: Arc<Round>, seed: u64, ops: usize, shuts_down_at: Option<usize>) {
    let mut rng = Rng::new(seed);
    for op in 0..ops {
        if shuts_down_at == Some(op) {
            let report = round.worker.shutdown().await;
            round.probe.mark_shutdown_returned();
            let alive = round.probe.alive();
            if alive != 0 {
                round
                    .book
                    .violation(format!("{alive} bodies alive when shutdown returned"));
            }
            for id in IDS {
                if let Some(status) = round.worker.get_task_status(id).await {
                    if !status.is_terminal() {
                        round
                            .book
                            .violation(format!("{id}: {status:?} after shutdown returned"));
                    }
                }
            }
            for task in report.tasks() {
                if !IDS.contains(&task.id.as_str()) {
                    round
                        .book
                        .violation(format!("report lists unknown id {:?}", task.id));
                }
            }
        }
        let index = rng.below(IDS.len() as u64) as usize;
        let id = IDS[index];
        match rng.below(10) {
            0..=4 => {
                if submit(&round, index, &mut rng).await.is_ok() && rng.chance(4) {
                    let round = Arc::clone(&round);
                    tokio::spawn(async move {
                        if let Some(status) = round.worker.wait(id).await {
                            if !status.is_terminal() {
                                round.book.violation(format!("{id}: wait gave {status:?}"));
                            }
                        }
                    });
                }
            }
            5 | 6 => match round.worker.cancel(id).await {
                Ok(status) if status.is_terminal() => {}
                Ok(status) => round.book.violation(format!("{id}: cancel gave {status:?}")),
                Err(CancelError::NotFound { .. }) => {}
                Err(other) => round.book.violation(format!("{id}: cancel error {other:?}")),
            },
            7 => {
                if let Some(status) = round.worker.wait(id).await {
                    if !status.is_terminal() {
                        round.book.violation(format!("{id}: wait gave {status:?}"));
                    }
                }
            }
            8 => {
                round.worker.cleanup_finished_tasks().await;
            }
            _ => {
                let _ = round.worker.get_task_status(id).await;
                let _ = round.worker.running_task_count().await;
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Is `next` a legal successor of `previous` for the same entry (no submission in between)?
fn legal(previous: &Option<TaskStatus>, next: &Option<TaskStatus>) -> bool {
    use TaskStatus::{Pending, Running};
    match (previous, next) {
        // Whatever it was, it may have finished and been cleaned up since.
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(Pending), Some(_)) => true,
        (Some(Running), Some(next)) => *next != Pending,
        (Some(terminal), Some(next)) => terminal == next,
    }
}

/// Samples every id's status until `stop` is set, checking each transition.
async fn monitor(round: Arc<Round>, stop: Arc<AtomicUsize>) -> usize {
    let mut previous: Vec<(u64, Option<TaskStatus>)> = vec![(0, None); IDS.len()];
    let mut samples = 0;
    while stop.load(Ordering::SeqCst) == 0 {
        for (index, id) in IDS.iter().enumerate() {
            let returned = round.book.returned[index].load(Ordering::SeqCst);
            let status = round.worker.get_task_status(id).await;
            let begun = round.book.begun[index].load(Ordering::SeqCst);
            let (returned_before, ref before) = previous[index];
            // No submit call overlapped the two samples: every call begun by now had returned
            // before the previous sample.
            if begun == returned_before && !legal(before, &status) {
                round
                    .book
                    .violation(format!("{id}: status went from {before:?} to {status:?}"));
            }
            previous[index] = (returned, status);
            samples += 1;
        }
        tokio::task::yield_now().await;
    }
    samples
}

async fn run_round(seed: u64, drivers: usize, ops: usize) {
    let mut rng = Rng::new(seed);
    let mut builder = Worker::builder()
        .cancel_timeout(Duration::from_millis(10))
        .shutdown_timeout(Duration::from_millis(30));
    if rng.chance(2) {
        builder = builder.max_concurrent(1 + rng.below(3) as usize);
    }
    let round = Arc::new(Round {
        worker: builder.build(),
        probe: Probe::new(),
        book: Arc::default(),
        capture: Arc::new(()),
    });

    let stop = Arc::new(AtomicUsize::new(0));
    let monitor = tokio::spawn(monitor(Arc::clone(&round), Arc::clone(&stop)));
    let shutdown_at = ops / 2 + rng.below(ops as u64 / 2) as usize;
    let mut handles = Vec::new();
    for index in 0..drivers {
        let shuts_down = (index == 0).then_some(shutdown_at);
        handles.push(tokio::spawn(driver(
            Arc::clone(&round),
            rng.next(),
            ops,
            shuts_down,
        )));
    }
    for handle in handles {
        handle.await.expect("driver panicked");
    }
    // Driver 0 shut down part-way; make sure (a later call waits for the same drain).
    let report = round.worker.shutdown().await;
    assert_eq!(
        round.worker.shutdown().await,
        report,
        "every shutdown gets the same report"
    );
    stop.store(1, Ordering::SeqCst);
    let samples = monitor.await.expect("monitor panicked");

    // Every task is terminal now, so every spawned waiter has been woken; give them a moment
    // to run to the end and let go of the round. One still waiting 10 s later is a hung `wait`.
    let waiters_deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&round) > 1 {
        assert!(
            std::time::Instant::now() < waiters_deadline,
            "seed {seed}: a spawned waiter still waits 10 s after shutdown returned"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let Round {
        worker,
        probe,
        book,
        capture,
    } = Arc::try_unwrap(round).unwrap_or_else(|_| panic!("a spawned waiter still holds the round"));
    let violations = book.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "seed {seed}: invariants violated: {violations:#?}"
    );

    // Every entry terminal, counts agree with the entries.
    let mut tracked = 0;
    for id in IDS {
        match worker.get_task_status(id).await {
            Some(status) => {
                assert!(
                    status.is_terminal(),
                    "seed {seed}: {id} is {status:?} after shutdown"
                );
                assert!(worker.has_task(id));
                tracked += 1;
            }
            None => assert!(!worker.has_task(id)),
        }
    }
    assert_eq!(worker.task_count(), tracked, "seed {seed}: task_count");
    assert_eq!(
        worker.running_task_count().await,
        0,
        "seed {seed}: running_task_count"
    );
    assert_eq!(probe.alive(), 0, "seed {seed}: bodies alive after shutdown");
    assert_eq!(
        probe.polls_after_shutdown(),
        0,
        "seed {seed}: bodies polled after shutdown"
    );
    assert!(probe.called() <= book.accepted.load(Ordering::SeqCst));

    // Everything is removable, and every closure and capture is gone.
    assert_eq!(worker.cleanup_finished_tasks().await, tracked);
    assert_eq!(worker.task_count(), 0);
    let attempts = book.accepted.load(Ordering::SeqCst) + book.refused.load(Ordering::SeqCst);
    // A task's status is written only once its closure and body are dropped, so by now every
    // closure (called or not) must be gone.
    let all_dropped = book.dropped.load(Ordering::SeqCst) == attempts && Arc::strong_count(&capture) == 1;
    assert!(
        all_dropped,
        "seed {seed}: closures dropped {} of {attempts}, captures held {}",
        book.dropped.load(Ordering::SeqCst),
        Arc::strong_count(&capture) - 1
    );
    assert!(samples > 0 && book.accepted.load(Ordering::SeqCst) > 0);
}

#[test]
fn random_operations_on_shared_ids_keep_every_invariant() {
    quiet_intended_panics();
    let rounds = repeat(40, 400);
    let ops = if reliability::stress() { 2_000 } else { 250 };
    let runtime = reliability::multi_thread(4);
    for round in 0..rounds as u64 {
        let seed = 0x5EED_0000 + round;
        runtime.block_on(watchdog(
            &format!("stress round {round} (seed {seed})"),
            run_round(seed, 6, ops),
        ));
    }
}
