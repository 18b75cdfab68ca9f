//! Floods and memory (issue 6, item 5): a flood of submissions keeps the number of entries and
//! the process memory bounded (with periodic cleanup, and with the `max_tracked` capacity bound),
//! duplicate floods are refused without leaking, a shutdown of thousands of stubborn tasks takes
//! about one timeout, and after shutdown and cleanup the registry is empty and every closure
//! and its captures are dropped (`Arc::strong_count` back to 1).
//!
//! The default flood is 10^5 submissions (a few seconds in a debug build); `STRESS=1` runs
//! 10^6, and `FLOOD=N` any other count.

mod reliability;

use std::sync::Arc;
use std::time::Duration;

use background_worker::{SubmitError, TaskOutcome, TaskStatus, Worker};
use reliability::{current_thread, watchdog};

/// How many submissions a flood makes.
fn flood_size() -> usize {
    if let Some(n) = std::env::var("FLOOD").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if cfg!(miri) {
        200
    } else if reliability::stress() {
        1_000_000
    } else {
        100_000
    }
}

/// Resident set size of this process in KiB (Linux), if known.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory may grow this much during a flood (allocator slack). Measured here: flat (6.2 to
/// 6.6 MiB) with cleanup, while without cleanup the 90,000 entries after the baseline took
/// 22 MiB (about 250 bytes each), and 10^6 would take over 200 MiB.
const RSS_SLACK_KIB: u64 = 12 * 1024;

/// The floods run one at a time, so that one's memory does not count against another's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_flood_with_periodic_cleanup_stays_bounded() {
    let _serial = serial();
    let total = flood_size();
    let batch = 1_000;
    let runtime = current_thread();
    runtime.block_on(watchdog("flood with cleanup", async {
        let worker = Worker::new();
        let capture = Arc::new(());
        let mut max_tracked = 0;
        let mut baseline = None;
        for n in 0..total {
            let capture = Arc::clone(&capture);
            worker
                .submit(format!("flood-{n}"), move || async move {
                    let _capture = capture;
                    Ok(())
                })
                .await
                .unwrap();
            if n % batch == batch - 1 {
                // Let the batch run, then clear it away.
                worker.wait(&format!("flood-{n}")).await;
                tokio::task::yield_now().await;
                max_tracked = max_tracked.max(worker.task_count());
                worker.cleanup_finished_tasks().await;
                if n + 1 == total / 10 {
                    baseline = rss_kib();
                }
            }
        }
        assert!(max_tracked <= 2 * batch, "entries grew to {max_tracked}");
        if let (Some(baseline), Some(now)) = (baseline, rss_kib()) {
            assert!(
                now <= baseline + RSS_SLACK_KIB,
                "memory grew from {baseline} KiB to {now} KiB over the flood"
            );
        }
        assert_eq!(worker.shutdown().await.total(), 0);
        worker.cleanup_finished_tasks().await;
        assert_eq!(worker.task_count(), 0);
        assert_eq!(Arc::strong_count(&capture), 1, "a closure or its captures leaked");
    }));
}

/// With `max_tracked`, a flood that nobody cleans up is refused at the bound (and its closures
/// dropped unrun) instead of growing the registry; cleaning up makes room again.
#[test]
fn a_flood_against_the_capacity_bound() {
    let _serial = serial();
    let total = flood_size() / 2;
    let limit = 1_000;
    let runtime = current_thread();
    runtime.block_on(watchdog("flood against max_tracked", async {
        let worker = Worker::builder().max_tracked(limit).build();
        let capture = Arc::new(());
        let (mut accepted, mut refused) = (0, 0);
        for n in 0..total {
            let capture = Arc::clone(&capture);
            let result = worker
                .submit(format!("flood-{n}"), move || async move {
                    let _capture = capture;
                    Ok(())
                })
                .await;
            match result {
                Ok(()) => accepted += 1,
                Err(SubmitError::AtCapacity { limit: reported, .. }) => {
                    assert_eq!(reported, limit);
                    refused += 1;
                    // Every few thousand refusals, let the tasks finish and make room.
                    if refused % 5_000 == 0 {
                        tokio::task::yield_now().await;
                        worker.cleanup_finished_tasks().await;
                    }
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
            assert!(
                worker.task_count() <= limit,
                "{} entries tracked",
                worker.task_count()
            );
            if n % 1_000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        assert!(
            accepted >= limit && refused > 0,
            "accepted {accepted}, refused {refused}"
        );
        worker.shutdown().await;
        worker.cleanup_finished_tasks().await;
        assert_eq!(worker.task_count(), 0);
        assert_eq!(
            Arc::strong_count(&capture),
            1,
            "a refused or finished closure leaked"
        );
    }));
}

/// With `max_tracked` and `max_finished`, the flood prunes the oldest finished entries itself:
/// nothing is refused while the live tasks fit, and the registry stays at the bound.
#[test]
fn a_flood_with_retention_needs_no_cleanup() {
    let _serial = serial();
    let total = flood_size() / 2;
    let runtime = current_thread();
    runtime.block_on(watchdog("flood with retention", async {
        let worker = Worker::builder().max_tracked(1_000).max_finished(500).build();
        let capture = Arc::new(());
        for n in 0..total {
            let capture = Arc::clone(&capture);
            worker
                .submit(format!("flood-{n}"), move || async move {
                    let _capture = capture;
                    Ok(())
                })
                .await
                .unwrap_or_else(|error| panic!("submission {n} refused: {error}"));
            if n % 100 == 99 {
                // One yield lets the scheduler poll some 60 tasks; four let the batch finish.
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
            }
            assert!(
                worker.task_count() <= 1_000,
                "{} entries tracked",
                worker.task_count()
            );
        }
        worker.shutdown().await;
        worker.cleanup_finished_tasks().await;
        assert_eq!(worker.task_count(), 0);
        assert_eq!(Arc::strong_count(&capture), 1);
    }));
}

/// A flood of duplicate submissions of one live id: every one refused, the live task untouched,
/// every refused closure dropped without being called.
#[test]
fn a_flood_of_duplicates() {
    let _serial = serial();
    let total = flood_size() / 2;
    let runtime = current_thread();
    runtime.block_on(watchdog("duplicate flood", async {
        let worker = Worker::new();
        let capture = Arc::new(());
        worker.submit("one", std::future::pending).await.unwrap();
        tokio::task::yield_now().await;
        for _ in 0..total {
            let capture = Arc::clone(&capture);
            let result = worker
                .submit("one", move || async move {
                    let _capture = capture;
                    panic!("a refused closure was called")
                })
                .await;
            assert_eq!(result, Err(SubmitError::DuplicateId { id: "one".into() }));
        }
        assert_eq!(Arc::strong_count(&capture), 1);
        assert_eq!(worker.task_count(), 1);
        assert_eq!(worker.get_task_status("one").await, Some(TaskStatus::Running));
        assert_eq!(worker.cancel("one").await, Ok(TaskStatus::Cancelled));
    }));
}

/// Shutdown of thousands of tasks that ignore cancellation takes about one timeout in all (the
/// timeout applies to every task at once), aborts them all, and releases every capture.
#[test]
fn shutdown_of_a_flood_of_stubborn_tasks_takes_one_timeout() {
    let _serial = serial();
    let tasks = if cfg!(miri) { 50 } else { 10_000 };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let worker = Worker::builder().shutdown_timeout(Duration::from_secs(5)).build();
        let capture = Arc::new(());
        for n in 0..tasks {
            let capture = Arc::clone(&capture);
            worker
                .submit_with_context(format!("stubborn-{n}"), move |_ctx| async move {
                    let _capture = capture;
                    std::future::pending::<()>().await;
                    Ok(())
                })
                .await
                .unwrap();
        }
        // Let every task start (a pending task would simply never run).
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(worker.running_task_count().await, tasks);
        let report = worker.shutdown().await;
        assert_eq!(report.total(), tasks);
        assert_eq!(report.aborted(), tasks);
        assert!(report
            .tasks()
            .iter()
            .all(|task| task.outcome == TaskOutcome::Aborted));
        assert!(
            report.elapsed() >= Duration::from_secs(5) && report.elapsed() < Duration::from_secs(6),
            "{tasks} stubborn tasks took {:?} to drain",
            report.elapsed()
        );
        assert_eq!(worker.cleanup_finished_tasks().await, tasks);
        assert_eq!(worker.task_count(), 0);
        assert_eq!(Arc::strong_count(&capture), 1);
    });
}
