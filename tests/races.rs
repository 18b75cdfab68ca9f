//! Named races (issue 6, item 3), each its own test, each repeated many times on a
//! multi-thread runtime so both orders of the race actually happen. Every test runs under a
//! real-time watchdog: a deadlock fails instead of hanging. The invariants are the ones listed in
//! `src/registry.rs`; `STRESS=1` repeats each race many more times.

mod reliability;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use background_worker::{SubmitError, TaskStatus, Worker};
use reliability::{
    block_until, eventually, multi_thread, process_watchdog, quiet_intended_panics, repeat, watchdog, Probe,
    Release, Rng,
};
use tokio::sync::Barrier as AsyncBarrier;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A few yields: enough for a task on another thread to get somewhere, not enough to be sure.
async fn jitter(rng: &mut Rng) {
    for _ in 0..rng.below(8) {
        tokio::task::yield_now().await;
    }
}

/// Cancel racing completion: whichever wins, `cancel` returns the task's final status, that
/// status is `Completed` or `Cancelled`, and it never changes afterwards.
#[test]
fn cancel_racing_completion() {
    let runtime = multi_thread(3);
    let mut rng = Rng::new(1);
    let mut outcomes = [0_usize; 2];
    runtime.block_on(watchdog("cancel racing completion", async {
        for round in 0..repeat(2_000, 50_000) {
            let worker = Worker::builder().cancel_timeout(ms(200)).build();
            let spins = rng.below(6);
            let id = format!("race-{round}");
            if rng.chance(2) {
                worker
                    .submit(id.as_str(), move || async move {
                        for _ in 0..spins {
                            tokio::task::yield_now().await;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
            } else {
                // A context body that finishes its work whatever the token says.
                worker
                    .submit_with_context(id.as_str(), move |_ctx| async move {
                        for _ in 0..spins {
                            tokio::task::yield_now().await;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
            jitter(&mut rng).await;
            let canceller = {
                let worker = worker.clone();
                let id = id.clone();
                tokio::spawn(async move { worker.cancel(&id).await })
            };
            let cancelled = canceller.await.unwrap().unwrap();
            assert!(
                matches!(cancelled, TaskStatus::Completed | TaskStatus::Cancelled),
                "round {round}: cancel returned {cancelled:?}"
            );
            outcomes[usize::from(cancelled == TaskStatus::Cancelled)] += 1;
            assert_eq!(
                worker.get_task_status(&id).await,
                Some(cancelled.clone()),
                "round {round}"
            );
            assert_eq!(worker.wait(&id).await, Some(cancelled.clone()), "round {round}");
            tokio::task::yield_now().await;
            assert_eq!(
                worker.get_task_status(&id).await,
                Some(cancelled),
                "round {round}"
            );
        }
    }));
    // Both sides of the race were exercised (Miri runs too few rounds to be sure of it).
    if !cfg!(miri) {
        assert!(
            outcomes[0] > 0 && outcomes[1] > 0,
            "outcomes (completed, cancelled): {outcomes:?}"
        );
    }
}

/// Cancel racing the end of the same task, with the id re-submitted the moment the old task is
/// terminal: every `cancel` must return the cancelled task's own terminal status, never the
/// status of the newer task that took its id. The task ignores its token, so it ends at the
/// cancel timeout; two cancels of it time out together, one aborts it, the other races the
/// re-submission.
#[test]
fn cancel_at_its_timeout_racing_resubmission() {
    let runtime = multi_thread(4);
    let mut rng = Rng::new(2);
    runtime.block_on(watchdog("cancel at timeout vs resubmission", async {
        for round in 0..repeat(400, 10_000) {
            let worker = Worker::builder().cancel_timeout(ms(1)).build();
            let work = Duration::from_micros(rng.below(2_000));
            worker
                .submit_with_context("job", move |_ctx| async move {
                    tokio::time::sleep(work).await;
                    Ok(())
                })
                .await
                .unwrap();
            let resubmitter = {
                let worker = worker.clone();
                tokio::spawn(async move {
                    loop {
                        match worker.get_task_status("job").await {
                            Some(status) if status.is_terminal() => break,
                            _ => tokio::task::yield_now().await,
                        }
                    }
                    worker.submit("job", std::future::pending).await
                })
            };
            let cancels: Vec<_> = (0..2)
                .map(|_| {
                    let worker = worker.clone();
                    tokio::spawn(async move { worker.cancel("job").await })
                })
                .collect();
            for cancel in cancels {
                let cancelled = cancel.await.unwrap().unwrap();
                assert!(
                    cancelled.is_terminal(),
                    "round {round}: cancel returned {cancelled:?}, the status of the task that replaced it"
                );
            }
            resubmitter.await.unwrap().unwrap();
            worker.shutdown().await;
        }
    }));
}

/// Cleanup racing completion: cleanup never removes an entry whose task has not finished, and
/// every entry is removed exactly once.
#[test]
fn cleanup_racing_completion() {
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("cleanup racing completion", async {
        let mut rng = Rng::new(3);
        for round in 0..repeat(60, 1_000) {
            let worker = Worker::new();
            let tasks = 50;
            let done: Arc<Vec<AtomicBool>> = Arc::new((0..tasks).map(|_| AtomicBool::new(false)).collect());
            for index in 0..tasks {
                let done = Arc::clone(&done);
                let spins = rng.below(20);
                worker
                    .submit(format!("t{index}"), move || async move {
                        for _ in 0..spins {
                            tokio::task::yield_now().await;
                        }
                        done[index].store(true, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
            let mut removed = 0;
            while removed < tasks {
                removed += worker.cleanup_finished_tasks().await;
                for (index, finished) in done.iter().enumerate() {
                    if !worker.has_task(&format!("t{index}")) {
                        assert!(
                            finished.load(Ordering::SeqCst),
                            "round {round}: t{index} was removed before its body returned"
                        );
                    }
                }
                tokio::task::yield_now().await;
            }
            assert_eq!(removed, tasks, "round {round}: every entry removed exactly once");
            assert_eq!(worker.task_count(), 0);
            assert_eq!(worker.cleanup_finished_tasks().await, 0);
        }
    }));
}

/// Submit racing shutdown: every submission is either refused or tracked, and when `shutdown`
/// returns every accepted task is terminal and no body is alive.
#[test]
fn submit_racing_shutdown() {
    quiet_intended_panics();
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("submit racing shutdown", async {
        let mut rng = Rng::new(4);
        for round in 0..repeat(150, 3_000) {
            let worker = Worker::builder().shutdown_timeout(ms(20)).build();
            let probe = Probe::new();
            let submitters = 3;
            // Per submitter: submit calls begun (ids are "s{submitter}-{n}" for n below it).
            let begun: Arc<Vec<AtomicUsize>> =
                Arc::new((0..submitters).map(|_| AtomicUsize::new(0)).collect());
            let mut handles = Vec::new();
            for submitter in 0..submitters {
                let (worker, probe, begun) = (worker.clone(), Arc::clone(&probe), Arc::clone(&begun));
                let seed = rng.next();
                handles.push(tokio::spawn(async move {
                    let mut rng = Rng::new(seed);
                    for n in 0.. {
                        begun[submitter].store(n + 1, Ordering::SeqCst);
                        let probe = Arc::clone(&probe);
                        let forever = rng.chance(2);
                        let result = worker
                            .submit_with_context(format!("s{submitter}-{n}"), move |ctx| {
                                probe.watch(async move {
                                    if forever {
                                        // Ignores its token: the drain must abort it.
                                        std::future::pending::<()>().await;
                                    }
                                    ctx.cancelled().await;
                                    Ok(())
                                })
                            })
                            .await;
                        match result {
                            Ok(()) => tokio::task::yield_now().await,
                            Err(SubmitError::ShuttingDown { .. }) => return n,
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                    unreachable!()
                }));
            }
            for _ in 0..rng.below(30) {
                tokio::task::yield_now().await;
            }
            let report = worker.shutdown().await;
            // The moment shutdown returns: everything ever accepted is terminal, nothing alive.
            assert_eq!(
                probe.alive(),
                0,
                "round {round}: bodies alive after shutdown returned"
            );
            probe.mark_shutdown_returned();
            for submitter in 0..submitters {
                for n in 0..begun[submitter].load(Ordering::SeqCst) {
                    let id = format!("s{submitter}-{n}");
                    if let Some(status) = worker.get_task_status(&id).await {
                        assert!(
                            status.is_terminal(),
                            "round {round}: {id} is {status:?} after shutdown"
                        );
                    }
                }
            }
            let mut accepted = 0;
            for handle in handles {
                accepted += handle.await.unwrap();
            }
            assert!(
                report.total() <= accepted,
                "round {round}: the report lists unknown tasks"
            );
            assert_eq!(worker.task_count(), accepted);
            assert!(
                probe.called() <= accepted,
                "round {round}: a refused closure was called"
            );
            assert_eq!(probe.polls_after_shutdown(), 0);
        }
    }));
}

/// Several shutdowns racing (from several clones, on several threads): all get the same report,
/// which lists every task once, and every task is terminal when each of them returns.
#[test]
fn shutdowns_racing() {
    let runtime = multi_thread(4);
    runtime.block_on(watchdog("shutdowns racing", async {
        let mut rng = Rng::new(5);
        for round in 0..repeat(200, 5_000) {
            let worker = Worker::builder().shutdown_timeout(ms(5)).build();
            let tasks = 1 + rng.below(20) as usize;
            for index in 0..tasks {
                let stubborn = rng.chance(3);
                worker
                    .submit_with_context(format!("t{index}"), move |ctx| async move {
                        if stubborn {
                            std::future::pending::<()>().await;
                        }
                        ctx.cancelled().await;
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
            let callers = 2 + rng.below(3) as usize;
            let barrier = Arc::new(AsyncBarrier::new(callers));
            let handles: Vec<_> = (0..callers)
                .map(|_| {
                    let (worker, barrier) = (worker.clone(), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let report = worker.shutdown().await;
                        for index in 0..tasks {
                            let status = worker.get_task_status(&format!("t{index}")).await.unwrap();
                            assert!(status.is_terminal(), "t{index} is {status:?} after shutdown");
                        }
                        report
                    })
                })
                .collect();
            let mut reports = Vec::new();
            for handle in handles {
                reports.push(handle.await.unwrap());
            }
            assert!(
                reports.windows(2).all(|pair| pair[0] == pair[1]),
                "round {round}: reports differ"
            );
            assert!(reports[0].total() <= tasks, "round {round}");
            assert_eq!(worker.running_task_count().await, 0);
        }
    }));
}

/// The report of a shutdown lists every task that was pending or running when it began, even
/// the ones that stop the instant they are told (on another thread, before the drain looks).
#[test]
fn shutdown_report_lists_every_task_that_was_live() {
    let runtime = multi_thread(4);
    runtime.block_on(watchdog("shutdown report completeness", async {
        let mut rng = Rng::new(11);
        for round in 0..repeat(200, 5_000) {
            let mut builder = Worker::builder().shutdown_timeout(ms(5));
            if rng.chance(2) {
                builder = builder.max_concurrent(2);
            }
            let worker = builder.build();
            let tasks = 1 + rng.below(20) as usize;
            for index in 0..tasks {
                worker
                    .submit_with_context(format!("t{index}"), move |ctx| async move {
                        ctx.cancelled().await;
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
            jitter(&mut rng).await;
            let report = worker.shutdown().await;
            assert_eq!(report.total(), tasks, "round {round}: the report lost a task");
        }
    }));
}

/// Cancel of a task whose body blocks its thread: `cancel` gives up waiting at its timeout and
/// reports `Cancelled`; when the body finally returns (with `Ok`, an error or a panic) the
/// status stays `Cancelled`; and a shutdown waits for that body before returning.
#[test]
fn cancel_of_a_body_blocking_its_thread() {
    let _watchdog = process_watchdog("cancel_of_a_body_blocking_its_thread");
    quiet_intended_panics();
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("cancel of a blocking body", async {
        for round in 0..repeat(12, 200) {
            let worker = Worker::builder().cancel_timeout(ms(5)).build();
            let probe = Probe::new();
            let ends = round % 3;
            let body_probe = Arc::clone(&probe);
            // The body blocks its thread until the test releases it (or drops `release`, on
            // every path out of this round, a failure included).
            let release = Release::new();
            let released = release.flag();
            let work = move || {
                body_probe.watch(async move {
                    assert!(block_until(&released), "the blocking body was never released");
                    match ends {
                        0 => Ok(()),
                        1 => anyhow::bail!("failed after blocking"),
                        _ => panic!("{}: after blocking", reliability::INTENDED),
                    }
                })
            };
            if round % 2 == 0 {
                worker.submit("blocker", work).await.unwrap();
            } else {
                worker
                    .submit_with_context("blocker", move |_ctx| work())
                    .await
                    .unwrap();
            }
            assert!(
                eventually(ms(1_000), || probe.called() == 1).await,
                "the body never started"
            );
            assert_eq!(
                worker.cancel("blocker").await,
                Ok(TaskStatus::Cancelled),
                "round {round}"
            );
            assert_eq!(probe.alive(), 1, "round {round}: the body is still blocking");

            if round % 4 < 2 {
                // Let the body return on its own: the status stays Cancelled.
                release.release();
                assert!(eventually(ms(2_000), || probe.alive() == 0).await);
                tokio::time::sleep(ms(5)).await;
                assert_eq!(
                    worker.get_task_status("blocker").await,
                    Some(TaskStatus::Cancelled)
                );
                assert_eq!(worker.wait("blocker").await, Some(TaskStatus::Cancelled));
            } else {
                // Shut down while it still blocks (released a little later, from a plain
                // thread): shutdown returns only once it is gone.
                let flag = release.flag();
                let releaser = std::thread::spawn(move || {
                    std::thread::sleep(ms(20));
                    flag.store(true, Ordering::SeqCst);
                });
                worker.shutdown().await;
                releaser.join().unwrap();
                assert_eq!(
                    probe.alive(),
                    0,
                    "round {round}: shutdown returned while the body ran"
                );
                assert_eq!(
                    worker.get_task_status("blocker").await,
                    Some(TaskStatus::Cancelled)
                );
            }
            assert_eq!(worker.running_task_count().await, 0);
        }
    }));
}

/// Re-submission of a finished id while the old task's bookkeeping still runs: the old task's
/// late writes (its drop guard after an abort, its final status) never touch the new entry.
#[test]
fn resubmission_while_the_old_task_still_winds_up() {
    let _watchdog = process_watchdog("resubmission_while_the_old_task_still_winds_up");
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("resubmission vs old bookkeeping", async {
        // (a) The old task was aborted by `cancel` while its body blocked its thread: its future
        // is dropped (and its drop guard runs) only when the body returns, well after the id
        // was taken by a new task.
        for round in 0..repeat(8, 100) {
            let worker = Worker::builder().cancel_timeout(ms(2)).build();
            let probe = Probe::new();
            let body_probe = Arc::clone(&probe);
            let release = Release::new();
            let released = release.flag();
            worker
                .submit("job", move || {
                    body_probe.watch(async move {
                        assert!(block_until(&released), "the blocking body was never released");
                        Ok(())
                    })
                })
                .await
                .unwrap();
            assert!(eventually(ms(1_000), || probe.called() == 1).await);
            assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
            worker.submit("job", std::future::pending).await.unwrap();
            release.release();
            assert!(
                eventually(ms(2_000), || probe.alive() == 0).await,
                "old body never returned"
            );
            tokio::time::sleep(ms(5)).await;
            assert_eq!(
                worker.get_task_status("job").await,
                Some(TaskStatus::Running),
                "round {round}: the old task's late bookkeeping overwrote the new task"
            );
            assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
        }

        // (b) The old task completed on its own; the id is taken again the moment its status is
        // terminal, while the old task is still returning from its poll.
        let mut rng = Rng::new(7);
        let worker = Worker::new();
        for round in 0..repeat(3_000, 50_000) {
            let spins = rng.below(3);
            worker
                .submit("hot", move || async move {
                    for _ in 0..spins {
                        tokio::task::yield_now().await;
                    }
                    Ok(())
                })
                .await
                .unwrap();
            loop {
                match worker.get_task_status("hot").await {
                    Some(TaskStatus::Completed) => break,
                    Some(TaskStatus::Pending | TaskStatus::Running) => tokio::task::yield_now().await,
                    other => panic!("round {round}: unexpected {other:?}"),
                }
            }
            let gate = Arc::new(tokio::sync::Notify::new());
            let release = Arc::clone(&gate);
            worker
                .submit("hot", move || async move {
                    release.notified().await;
                    Ok(())
                })
                .await
                .unwrap();
            for _ in 0..rng.below(4) {
                tokio::task::yield_now().await;
                let status = worker.get_task_status("hot").await.unwrap();
                assert!(!status.is_terminal(), "round {round}: new task shows {status:?}");
            }
            gate.notify_one();
            assert_eq!(
                worker.wait("hot").await,
                Some(TaskStatus::Completed),
                "round {round}"
            );
        }
    }));
}

/// Dropping the last `Worker` handle while tasks run: every task's token is cancelled, so
/// `submit` bodies are dropped at their `.await` and context bodies are told to stop.
#[test]
fn dropping_the_last_handle_while_tasks_run() {
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("dropping the last handle", async {
        let mut rng = Rng::new(8);
        for round in 0..repeat(200, 5_000) {
            let worker = Worker::new();
            let probe = Probe::new();
            let told = Arc::new(AtomicUsize::new(0));
            let ctx_started = Arc::new(AtomicUsize::new(0));
            let tasks = 1 + rng.below(10) as usize;
            for index in 0..tasks {
                let body_probe = Arc::clone(&probe);
                if index % 2 == 0 {
                    worker
                        .submit(format!("plain{index}"), move || {
                            body_probe.watch(std::future::pending())
                        })
                        .await
                        .unwrap();
                } else {
                    let told = Arc::clone(&told);
                    let ctx_started = Arc::clone(&ctx_started);
                    worker
                        .submit_with_context(format!("ctx{index}"), move |ctx| {
                            ctx_started.fetch_add(1, Ordering::SeqCst);
                            body_probe.watch(async move {
                                ctx.cancelled().await;
                                told.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            })
                        })
                        .await
                        .unwrap();
                }
            }
            // The last handle goes away on another thread, while the tasks start up.
            let clone = worker.clone();
            drop(worker);
            let dropper = tokio::spawn(async move {
                tokio::task::yield_now().await;
                drop(clone);
            });
            jitter(&mut rng).await;
            dropper.await.unwrap();
            let all_gone = eventually(ms(5_000), || probe.alive() == 0).await;
            assert!(
                all_gone,
                "round {round}: {} of {tasks} bodies still alive after the last handle was dropped",
                probe.alive()
            );
            // Every context body that started was told to stop (and then returned).
            assert_eq!(
                told.load(Ordering::SeqCst),
                ctx_started.load(Ordering::SeqCst),
                "round {round}"
            );
        }
    }));
}

/// Duplicate submits racing: of several simultaneous submits of one id, exactly one is accepted
/// and only its closure ever runs.
#[test]
fn duplicate_submits_racing() {
    let _watchdog = process_watchdog("duplicate_submits_racing");
    let runtime = multi_thread(4);
    runtime.block_on(watchdog("duplicate submits racing", async {
        for round in 0..repeat(300, 5_000) {
            let worker = Worker::new();
            let called = Arc::new(AtomicUsize::new(0));
            let callers = 4;
            let barrier = Arc::new(Barrier::new(callers));
            let handles: Vec<_> = (0..callers)
                .map(|_| {
                    let (worker, called, barrier) =
                        (worker.clone(), Arc::clone(&called), Arc::clone(&barrier));
                    tokio::task::spawn_blocking(move || {
                        barrier.wait();
                        futures_lite_block_on(worker.submit("dup", move || {
                            called.fetch_add(1, Ordering::SeqCst);
                            std::future::pending()
                        }))
                    })
                })
                .collect();
            let mut accepted = 0;
            for handle in handles {
                match handle.await.unwrap() {
                    Ok(()) => accepted += 1,
                    Err(SubmitError::DuplicateId { id }) => assert_eq!(id, "dup"),
                    Err(other) => panic!("round {round}: {other:?}"),
                }
            }
            assert_eq!(
                accepted, 1,
                "round {round}: accepted {accepted} submits of one id"
            );
            assert!(eventually(ms(1_000), || called.load(Ordering::SeqCst) == 1).await);
            assert_eq!(worker.task_count(), 1);
            assert_eq!(worker.cancel("dup").await, Ok(TaskStatus::Cancelled));
            assert_eq!(called.load(Ordering::SeqCst), 1);
        }
    }));
}

/// Two cancels of one task racing: both return the same final status.
#[test]
fn cancels_racing() {
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("cancels racing", async {
        let mut rng = Rng::new(10);
        for round in 0..repeat(1_000, 20_000) {
            let worker = Worker::builder().cancel_timeout(ms(2)).build();
            let winds = rng.millis(4);
            worker
                .submit_with_context("job", move |ctx| async move {
                    ctx.cancelled().await;
                    tokio::time::sleep(winds).await;
                    Ok(())
                })
                .await
                .unwrap();
            jitter(&mut rng).await;
            let first = tokio::spawn({
                let worker = worker.clone();
                async move { worker.cancel("job").await }
            });
            let second = tokio::spawn({
                let worker = worker.clone();
                async move { worker.cancel("job").await }
            });
            let (first, second) = (first.await.unwrap(), second.await.unwrap());
            assert_eq!(first, Ok(TaskStatus::Cancelled), "round {round}");
            assert_eq!(second, Ok(TaskStatus::Cancelled), "round {round}");
        }
    }));
}

/// A task cancelled just before shutdown: `cancel` has written `Cancelled`, but the body's future
/// (here: one whose destructor takes a while) is still being dropped on its thread. `shutdown`
/// must not return before that body is gone: "when shutdown returns, no body runs any more".
#[test]
fn shutdown_right_after_cancel_waits_for_the_body_to_be_dropped() {
    struct SlowDrop(Arc<Probe>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(ms(30));
            let _ = &self.0;
        }
    }
    let runtime = multi_thread(3);
    runtime.block_on(watchdog("shutdown right after cancel", async {
        for round in 0..repeat(5, 50) {
            let worker = Worker::new();
            let probe = Probe::new();
            let body_probe = Arc::clone(&probe);
            worker
                .submit("job", move || {
                    let slow = SlowDrop(Arc::clone(&body_probe));
                    body_probe.watch(async move {
                        let _slow = slow;
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                })
                .await
                .unwrap();
            assert!(eventually(ms(1_000), || probe.called() == 1).await);
            assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
            worker.shutdown().await;
            assert_eq!(
                probe.alive(),
                0,
                "round {round}: shutdown returned while a cancelled body was still being dropped"
            );
        }
    }));
}

/// `block_on` for a future that completes at its first poll (`submit` does), from a plain thread.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("submit did not complete at its first poll"),
    }
}
