//! Schedule exploration with Shuttle: the real registry, tokens and drain, with Shuttle's
//! instrumented DashMap, tokio and locks swapped in by `src/sync.rs`.
//!
//! Only compiled with `RUSTFLAGS="--cfg shuttle"`:
//!
//! ```text
//! RUSTFLAGS="--cfg shuttle" cargo test --test shuttle --release
//! ```
//!
//! Shuttle runs each scenario many times under a random and a PCT scheduler and fails on a deadlock or a
//! broken assertion, printing a schedule to replay. `SHUTTLE_ITERATIONS` overrides the count.
//! Shuttle does not model time: timeouts never fire, so every task here stops when told.
#![cfg(shuttle)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use background_worker::{SubmitError, TaskStatus, Worker};
use shuttle::future::{block_on, spawn, yield_now};

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

/// Runs `scenario` under Shuttle's random scheduler, then under PCT (which targets bugs that need
/// a few specific preemptions, depth 3).
fn explore(scenario: impl Fn() + Send + Sync + 'static) {
    let scenario = Arc::new(scenario);
    let random = Arc::clone(&scenario);
    shuttle::check_random(move || random(), iterations());
    shuttle::check_pct(move || scenario(), iterations(), 3);
}

/// Counts a body as running from its first poll until it returns or is dropped.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn enter(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body that yields a few times (giving the scheduler room to interleave) and counts itself
/// in `running` while it runs, including when it is dropped mid-way by a cancellation.
async fn body(running: Arc<AtomicUsize>, yields: usize) -> anyhow::Result<()> {
    let _running = Running::enter(running);
    for _ in 0..yields {
        yield_now().await;
    }
    Ok(())
}

#[test]
fn submit_racing_shutdown_is_rejected_or_drained() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            let running = Arc::new(AtomicUsize::new(0));
            let submitter = {
                let (worker, running) = (worker.clone(), Arc::clone(&running));
                spawn(async move {
                    let mut accepted = Vec::new();
                    for id in ["a", "b", "c"] {
                        let running = Arc::clone(&running);
                        match worker.submit(id, move || body(running, 2)).await {
                            Ok(()) => accepted.push(id),
                            Err(SubmitError::ShuttingDown { .. }) => {}
                            Err(other) => panic!("unexpected error {other}"),
                        }
                    }
                    accepted
                })
            };
            let report = worker.shutdown().await;
            assert_eq!(
                running.load(Ordering::SeqCst),
                0,
                "a body runs after shutdown returned"
            );
            let accepted = submitter.await.unwrap();
            for id in &accepted {
                let status = worker
                    .get_task_status(id)
                    .await
                    .expect("accepted task is tracked");
                assert!(status.is_terminal(), "{id} is {status:?} after shutdown");
            }
            // Every task live at shutdown is in the report; every task in it was accepted.
            for task in report.tasks() {
                assert!(accepted.contains(&task.id.as_str()));
            }
            assert!(worker.submit("late", || async { Ok(()) }).await.is_err());
        });
    });
}

#[test]
fn cancel_racing_completion_agrees_with_the_registry() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            let running = Arc::new(AtomicUsize::new(0));
            let task_running = Arc::clone(&running);
            worker
                .submit_with_context("job", move |_ctx| body(task_running, 2))
                .await
                .unwrap();
            let canceller = {
                let worker = worker.clone();
                spawn(async move { worker.cancel("job").await })
            };
            let waited = worker.wait("job").await.unwrap();
            let cancelled = canceller.await.unwrap().unwrap();
            assert_eq!(
                waited, cancelled,
                "cancel and wait saw different terminal statuses"
            );
            assert!(matches!(cancelled, TaskStatus::Completed | TaskStatus::Cancelled));
            assert_eq!(worker.get_task_status("job").await, Some(cancelled));
            let health = worker.health();
            assert_eq!(health.completed + health.cancelled, 1);
            assert_eq!(health.pending + health.running, 0);
        });
    });
}

#[test]
fn waiters_registering_and_giving_up_while_the_task_ends_are_all_woken() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            let running = Arc::new(AtomicUsize::new(0));
            let task_running = Arc::clone(&running);
            worker.submit("job", move || body(task_running, 2)).await.unwrap();
            let waiter = |worker: Worker| spawn(async move { worker.wait("job").await });
            let first = waiter(worker.clone());
            // A waiter that polls its wait once and then drops it, racing the others.
            let quitter = {
                let worker = worker.clone();
                spawn(async move {
                    let mut wait = Box::pin(worker.wait("job"));
                    // Twice: a wait yields once before it registers.
                    let mut ready = false;
                    for _ in 0..2 {
                        let polled =
                            std::future::poll_fn(|cx| std::task::Poll::Ready(wait.as_mut().poll(cx))).await;
                        if polled.is_ready() {
                            ready = true;
                            break;
                        }
                    }
                    drop(wait);
                    ready
                })
            };
            let second = waiter(worker.clone());
            let _ = quitter.await.unwrap();
            assert_eq!(first.await.unwrap(), Some(TaskStatus::Completed));
            assert_eq!(second.await.unwrap(), Some(TaskStatus::Completed));
            assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
        });
    });
}

#[test]
fn cleanup_racing_completion_never_removes_a_live_task() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            let running = Arc::new(AtomicUsize::new(0));
            let task_running = Arc::clone(&running);
            worker.submit("job", move || body(task_running, 1)).await.unwrap();
            let cleaner = {
                let (worker, running) = (worker.clone(), Arc::clone(&running));
                spawn(async move {
                    let mut removed = 0;
                    for _ in 0..3 {
                        let now = worker.cleanup_finished_tasks().await;
                        // The body drops its guard before the task turns terminal, so an entry
                        // removed while its body still ran would show here.
                        if now > 0 {
                            assert_eq!(running.load(Ordering::SeqCst), 0, "a running task was removed");
                        }
                        removed += now;
                        yield_now().await;
                    }
                    removed
                })
            };
            let removed = cleaner.await.unwrap();
            match worker.get_task_status("job").await {
                None => assert_eq!(removed, 1),
                Some(_) => assert_eq!(removed, 0),
            }
            worker.shutdown().await;
            assert_eq!(worker.task_count(), worker.health().total);
        });
    });
}

#[test]
fn concurrent_duplicate_submits_accept_exactly_one() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            let started = Arc::new(AtomicUsize::new(0));
            let submit = |worker: Worker, started: Arc<AtomicUsize>| {
                spawn(async move {
                    worker
                        .submit_with_context("dup", move |ctx| async move {
                            started.fetch_add(1, Ordering::SeqCst);
                            ctx.cancelled().await;
                            Ok(())
                        })
                        .await
                })
            };
            let first = submit(worker.clone(), Arc::clone(&started));
            let second = submit(worker.clone(), Arc::clone(&started));
            let results = [first.await.unwrap(), second.await.unwrap()];
            let accepted = results.iter().filter(|result| result.is_ok()).count();
            assert_eq!(accepted, 1, "{results:?}");
            assert!(results
                .iter()
                .any(|result| matches!(result, Err(SubmitError::DuplicateId { id }) if id == "dup")));
            let report = worker.shutdown().await;
            assert_eq!(report.total(), 1);
            assert!(started.load(Ordering::SeqCst) <= 1);
        });
    });
}

#[test]
fn resubmitting_a_finished_id_is_never_overwritten_by_the_old_task() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            worker
                .submit("id", || async { anyhow::bail!("old") })
                .await
                .unwrap();
            let resubmitter = {
                let worker = worker.clone();
                spawn(async move {
                    loop {
                        match worker
                            .submit_with_context("id", |ctx| async move {
                                ctx.cancelled().await;
                                Ok(())
                            })
                            .await
                        {
                            Ok(()) => return,
                            Err(SubmitError::DuplicateId { .. }) => yield_now().await,
                            Err(other) => panic!("unexpected error {other}"),
                        }
                    }
                })
            };
            resubmitter.await.unwrap();
            yield_now().await;
            // The new task waits for its token: it must still be live, whatever the old one did.
            let status = worker.get_task_status("id").await.unwrap();
            assert!(!status.is_terminal(), "new task was overwritten: {status:?}");
            let report = worker.shutdown().await;
            assert_eq!(report.total(), 1);
            assert_eq!(worker.get_task_status("id").await, Some(TaskStatus::Cancelled));
        });
    });
}

#[test]
fn concurrent_shutdowns_share_one_report() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            for id in ["a", "b"] {
                worker.submit(id, || std::future::pending()).await.unwrap();
            }
            let other = {
                let worker = worker.clone();
                spawn(async move { worker.shutdown().await })
            };
            let mine = worker.shutdown().await;
            assert_eq!(other.await.unwrap(), mine);
            assert_eq!(mine.total(), 2);
            assert_eq!(mine.cancelled(), 2);
        });
    });
}

#[test]
fn a_body_waiting_for_its_stop_is_woken_whatever_the_stop_and_its_token_race() {
    explore(|| {
        block_on(async {
            let worker = Worker::new();
            let (started, woke) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (start, flag) = (Arc::clone(&started), Arc::clone(&woke));
            worker
                .submit_with_context("job", move |ctx| async move {
                    start.fetch_add(1, Ordering::SeqCst);
                    let clone = ctx.clone();
                    // Makes the task's token while the body parks its wait, or after.
                    let maker = spawn(async move { drop(clone.token().clone()) });
                    ctx.cancelled().await;
                    flag.fetch_add(1, Ordering::SeqCst);
                    maker.await.unwrap();
                    Ok(())
                })
                .await
                .unwrap();
            while started.load(Ordering::SeqCst) == 0 {
                yield_now().await; // a task stopped before it starts never runs its body
            }
            let canceller = {
                let worker = worker.clone();
                spawn(async move { worker.cancel("job").await })
            };
            assert_eq!(canceller.await.unwrap(), Ok(TaskStatus::Cancelled));
            assert_eq!(woke.load(Ordering::SeqCst), 1, "the body was aborted, not woken");
        });
    });
}
