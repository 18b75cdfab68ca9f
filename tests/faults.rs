//! Faults (issue 6, item 4): bodies that block their runtime thread, panics with payloads that
//! are not strings (in the closure, in the body, in the body's destructor), tasks that spawn
//! sub-tasks or call back into their own worker, and a runtime dropped under running tasks.
//! Every test runs on both runtime flavours (current-thread and multi-thread), under a
//! real-time watchdog.

mod reliability;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use background_worker::{SubmitError, TaskOutcome, TaskStatus, Worker};
use reliability::{
    block_until, both_flavours, eventually, process_watchdog, quiet_intended_panics, watchdog, Payload,
    Probe, Release, INTENDED,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `test` on a current-thread and on a multi-thread runtime.
fn on_both_flavours<F, Fut>(name: &str, test: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    quiet_intended_panics();
    let _watchdog = process_watchdog(name);
    for (flavour, runtime) in both_flavours() {
        runtime.block_on(watchdog(&format!("{name} on {flavour}"), test(flavour)));
    }
}

#[test]
fn a_body_blocking_its_thread_still_ends_with_the_right_status() {
    on_both_flavours("blocking body", |flavour| async move {
        let worker = Worker::new();
        worker
            .submit("blocks", || async {
                std::thread::sleep(ms(30));
                Ok(())
            })
            .await
            .unwrap();
        worker
            .submit("blocks-then-fails", || async {
                std::thread::sleep(ms(10));
                anyhow::bail!("gave up")
            })
            .await
            .unwrap();
        worker.submit("quick", || async { Ok(()) }).await.unwrap();
        assert_eq!(
            worker.wait("blocks").await,
            Some(TaskStatus::Completed),
            "{flavour}"
        );
        assert_eq!(
            worker.wait("blocks-then-fails").await,
            Some(TaskStatus::Failed("gave up".into())),
            "{flavour}"
        );
        assert_eq!(
            worker.wait("quick").await,
            Some(TaskStatus::Completed),
            "{flavour}"
        );
        assert_eq!(worker.running_task_count().await, 0);
        assert_eq!(worker.shutdown().await.total(), 0);
    });
}

/// A body that ignores its token and blocks its thread past the shutdown timeout cannot be
/// aborted mid-poll; `shutdown` waits for that poll, so when it returns the body is gone.
#[test]
fn shutdown_waits_for_a_body_blocking_its_thread() {
    on_both_flavours("shutdown vs blocking body", |flavour| async move {
        let worker = Worker::builder().shutdown_timeout(ms(10)).build();
        let probe = Probe::new();
        let body_probe = Arc::clone(&probe);
        worker
            .submit_with_context("stubborn", move |ctx| {
                body_probe.watch(async move {
                    // Told to stop, it blocks its thread well past the shutdown timeout.
                    ctx.cancelled().await;
                    std::thread::sleep(ms(80));
                    Ok(())
                })
            })
            .await
            .unwrap();
        // Let it start (on the current-thread runtime, it will block this very thread).
        assert!(eventually(ms(1_000), || probe.called() == 1).await, "{flavour}");
        let report = worker.shutdown().await;
        assert_eq!(
            probe.alive(),
            0,
            "{flavour}: shutdown returned while the body still ran"
        );
        assert!(
            matches!(
                report.outcome("stubborn"),
                Some(TaskOutcome::Aborted | TaskOutcome::Cancelled)
            ),
            "{flavour}: {report:?}"
        );
        assert_eq!(
            worker.get_task_status("stubborn").await,
            Some(TaskStatus::Cancelled)
        );
    });
}

/// On a multi-thread runtime, one body blocking a thread does not stop other tasks.
///
/// The others are submitted once the blocking body runs: submitted right after it, they could all
/// finish before a worker thread got to poll it on a loaded machine, and the body would still be
/// `Pending` (which is how this test failed under load). Every path out releases the body
/// ([`Release`]), and a process watchdog bounds the runtime's drop.
#[test]
fn other_tasks_progress_while_one_body_blocks() {
    quiet_intended_panics();
    let _watchdog = process_watchdog("other_tasks_progress_while_one_body_blocks");
    let runtime = reliability::multi_thread(2);
    // Dropped before the runtime: a failure below releases the blocked thread.
    let release = Release::new();
    let flag = release.flag();
    runtime.block_on(watchdog("progress around a blocked thread", async {
        let worker = Worker::new();
        let started = Arc::new(AtomicBool::new(false));
        let body_started = Arc::clone(&started);
        worker
            .submit("blocker", move || async move {
                body_started.store(true, Ordering::SeqCst);
                assert!(block_until(&flag), "the blocking body was never released");
                Ok(())
            })
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(30), || started.load(Ordering::SeqCst)).await,
            "the blocking body did not start within 30 s"
        );
        for index in 0..20 {
            worker
                .submit(format!("t{index}"), || async {
                    tokio::time::sleep(ms(1)).await;
                    Ok(())
                })
                .await
                .unwrap();
        }
        for index in 0..20 {
            assert_eq!(
                worker.wait(&format!("t{index}")).await,
                Some(TaskStatus::Completed)
            );
        }
        assert_eq!(worker.get_task_status("blocker").await, Some(TaskStatus::Running));
        release.release();
        assert_eq!(worker.wait("blocker").await, Some(TaskStatus::Completed));
    }));
}

#[test]
fn panics_with_non_string_payloads_become_failed() {
    on_both_flavours("non-string panics", |flavour| async move {
        let worker = Worker::new();
        let opaque = TaskStatus::Failed("panicked: Box<dyn Any>".into());
        worker
            .submit("int", || async { std::panic::panic_any(42_i32) })
            .await
            .unwrap();
        worker
            .submit("struct", || async { std::panic::panic_any(Payload { code: 3 }) })
            .await
            .unwrap();
        worker
            .submit("resume-unwind", || async {
                std::panic::resume_unwind(Box::new(7_u8))
            })
            .await
            .unwrap();
        worker
            .submit("string", || async { panic!("{INTENDED}: code {}", 5) })
            .await
            .unwrap();
        // The closure itself panics, before any body exists.
        worker
            .submit("closure-int", || -> std::future::Ready<anyhow::Result<()>> {
                std::panic::panic_any(42_i32)
            })
            .await
            .unwrap();
        worker
            .submit_with_context(
                "closure-struct",
                |_ctx| -> std::future::Ready<anyhow::Result<()>> {
                    std::panic::panic_any(Payload { code: 4 })
                },
            )
            .await
            .unwrap();
        // A task that is not panicking, alive the whole time.
        worker
            .submit("bystander", || async {
                tokio::time::sleep(ms(20)).await;
                Ok(())
            })
            .await
            .unwrap();

        for id in ["int", "struct", "resume-unwind", "closure-int", "closure-struct"] {
            assert_eq!(worker.wait(id).await, Some(opaque.clone()), "{flavour}: {id}");
        }
        assert_eq!(
            worker.wait("string").await,
            Some(TaskStatus::Failed(format!("panicked: {INTENDED}: code 5"))),
            "{flavour}"
        );
        assert_eq!(
            worker.wait("bystander").await,
            Some(TaskStatus::Completed),
            "{flavour}"
        );
        // The worker is unaffected.
        worker.submit("after", || async { Ok(()) }).await.unwrap();
        assert_eq!(worker.wait("after").await, Some(TaskStatus::Completed));
        assert_eq!(worker.shutdown().await.total(), 0);
    });
}

/// A context body that panics after being told to stop was cancelled, not failed.
#[test]
fn a_panic_after_cancellation_is_cancelled() {
    on_both_flavours("panic after cancel", |flavour| async move {
        let worker = Worker::new();
        worker
            .submit_with_context("told", |ctx| async move {
                ctx.cancelled().await;
                std::panic::panic_any(Payload { code: 9 })
            })
            .await
            .unwrap();
        tokio::task::yield_now().await;
        assert_eq!(
            worker.cancel("told").await,
            Ok(TaskStatus::Cancelled),
            "{flavour}"
        );
        assert_eq!(worker.get_task_status("told").await, Some(TaskStatus::Cancelled));
    });
}

/// A value inside the body whose destructor panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            std::panic::panic_any(Payload { code: 13 });
        }
    }
}

/// A body whose destructor panics when it is cancelled: the task is still `Cancelled`, nothing
/// is left running, and the worker goes on.
#[test]
fn a_body_whose_destructor_panics_when_cancelled() {
    on_both_flavours("destructor panic on cancel", |flavour| async move {
        let worker = Worker::new();
        worker
            .submit("dropper", || async {
                let _bomb = PanicOnDrop;
                std::future::pending::<()>().await;
                Ok(())
            })
            .await
            .unwrap();
        tokio::task::yield_now().await;
        assert_eq!(
            worker.cancel("dropper").await,
            Ok(TaskStatus::Cancelled),
            "{flavour}"
        );
        tokio::task::yield_now().await;
        assert_eq!(
            worker.get_task_status("dropper").await,
            Some(TaskStatus::Cancelled)
        );
        assert_eq!(worker.running_task_count().await, 0);
        worker.submit("after", || async { Ok(()) }).await.unwrap();
        assert_eq!(
            worker.wait("after").await,
            Some(TaskStatus::Completed),
            "{flavour}"
        );
        worker.shutdown().await;
    });
}

/// A body that returns `Ok` but whose destructor then panics panicked: `Failed("panicked: …")`
/// (a panic in the body), never left `Running`, and not passed off as `Cancelled`.
#[test]
fn a_body_whose_destructor_panics_after_it_returned() {
    on_both_flavours("destructor panic after Ok", |flavour| async move {
        let worker = Worker::new();
        worker
            .submit("dropper", || async {
                let _bomb = PanicOnDrop;
                tokio::task::yield_now().await;
                Ok(())
            })
            .await
            .unwrap();
        let status = worker.wait("dropper").await;
        assert_eq!(
            status,
            Some(TaskStatus::Failed("panicked: Box<dyn Any>".into())),
            "{flavour}"
        );
        assert_eq!(worker.running_task_count().await, 0);
        worker.shutdown().await;
    });
}

/// A task that spawns its own sub-tasks: plain tokio tasks it awaits, and tasks it submits to
/// its own worker. The children are tracked like any task, drained by shutdown, and a child
/// submitted after shutdown began is refused.
#[test]
fn a_task_that_spawns_sub_tasks() {
    on_both_flavours("sub-tasks", |flavour| async move {
        let worker = Worker::builder().shutdown_timeout(ms(20)).build();
        let parent_worker = worker.clone();
        let refused: Arc<Mutex<Vec<SubmitError>>> = Arc::default();
        let refused_by_parent = Arc::clone(&refused);
        worker
            .submit_with_context("parent", move |ctx| async move {
                // Plain tokio sub-tasks, awaited.
                let mut set = tokio::task::JoinSet::new();
                for n in 0..4_u64 {
                    set.spawn(async move {
                        tokio::time::sleep(ms(n)).await;
                        n
                    });
                }
                let mut sum = 0;
                while let Some(n) = set.join_next().await {
                    sum += n?;
                }
                anyhow::ensure!(sum == 6, "sub-tasks summed to {sum}");
                // Children on the same worker: one finishes, one runs until shutdown.
                parent_worker.submit("child-quick", || async { Ok(()) }).await?;
                parent_worker
                    .submit_with_context("child-long", |ctx| async move {
                        ctx.cancelled().await;
                        Ok(())
                    })
                    .await?;
                ctx.cancelled().await;
                // Shutdown has begun: a further child is refused.
                if let Err(error) = parent_worker.submit("child-late", || async { Ok(()) }).await {
                    refused_by_parent.lock().unwrap().push(error);
                }
                Ok(())
            })
            .await
            .unwrap();
        assert!(
            eventually(ms(1_000), || worker.has_task("child-long")).await,
            "{flavour}"
        );
        assert_eq!(
            worker.wait("child-quick").await,
            Some(TaskStatus::Completed),
            "{flavour}"
        );

        let report = worker.shutdown().await;
        for id in ["parent", "child-long"] {
            let outcome = report.outcome(id);
            assert!(
                matches!(outcome, Some(TaskOutcome::Cancelled)),
                "{flavour}: {id}: {report:?}"
            );
            assert_eq!(
                worker.get_task_status(id).await,
                Some(TaskStatus::Cancelled),
                "{flavour}: {id}"
            );
        }
        assert_eq!(
            *refused.lock().unwrap(),
            vec![SubmitError::ShuttingDown {
                id: "child-late".into()
            }]
        );
        assert!(!worker.has_task("child-late"));
        assert_eq!(worker.running_task_count().await, 0);
    });
}

/// A task that calls `shutdown` on its own worker does not deadlock: the drain cannot wait for
/// the caller forever, it aborts it at the timeout (a context body) or drops it at once (a
/// `submit` body), and every caller gets the report.
#[test]
fn a_task_that_shuts_down_its_own_worker() {
    on_both_flavours("self shutdown", |flavour| async move {
        for plain in [false, true] {
            let worker = Worker::builder().shutdown_timeout(ms(20)).build();
            let inner = worker.clone();
            let returned = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&returned);
            let body = async move {
                inner.shutdown().await;
                flag.store(true, Ordering::SeqCst);
                Ok(())
            };
            if plain {
                worker.submit("suicide", move || body).await.unwrap();
            } else {
                worker
                    .submit_with_context("suicide", move |_ctx| body)
                    .await
                    .unwrap();
            }
            assert!(
                eventually(ms(1_000), || worker.is_shutting_down()).await,
                "{flavour}"
            );
            let report = worker.shutdown().await;
            let expected = if plain {
                TaskOutcome::Cancelled
            } else {
                TaskOutcome::Aborted
            };
            assert_eq!(
                report.outcome("suicide"),
                Some(&expected),
                "{flavour}, plain: {plain}"
            );
            assert_eq!(
                worker.get_task_status("suicide").await,
                Some(TaskStatus::Cancelled)
            );
            assert!(
                !returned.load(Ordering::SeqCst),
                "the body outlived its own drain"
            );
        }
    });
}

/// A context task that cancels itself: `cancel` waits the cancel timeout for the task (which is
/// the caller), then aborts it; no deadlock, status `Cancelled`, and a shutdown afterwards is
/// immediate.
#[test]
fn a_task_that_cancels_itself() {
    on_both_flavours("self cancel", |flavour| async move {
        let worker = Worker::builder().cancel_timeout(ms(10)).build();
        let inner = worker.clone();
        let seen: Arc<Mutex<Option<TaskStatus>>> = Arc::default();
        let seen_by_body = Arc::clone(&seen);
        worker
            .submit_with_context("self", move |ctx| async move {
                let status = inner.cancel(ctx.id()).await;
                *seen_by_body.lock().unwrap() = status.ok();
                tokio::task::yield_now().await;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            worker.wait("self").await,
            Some(TaskStatus::Cancelled),
            "{flavour}"
        );
        let report = worker.shutdown().await;
        assert_eq!(report.total(), 0, "{flavour}");
        assert_eq!(worker.get_task_status("self").await, Some(TaskStatus::Cancelled));
        let seen = seen.lock().unwrap().clone();
        assert!(
            matches!(seen, None | Some(TaskStatus::Cancelled)),
            "{flavour}: {seen:?}"
        );
    });
}

/// A runtime dropped under running and pending tasks: every task ends `Cancelled` (none is
/// stuck `Running` or `Pending`), waiters are released, and the same worker works on a new
/// runtime.
#[test]
fn a_runtime_dropped_under_running_tasks() {
    quiet_intended_panics();
    let _watchdog = process_watchdog("a_runtime_dropped_under_running_tasks");
    for (flavour, runtime) in both_flavours() {
        let worker = Worker::builder().max_concurrent(2).build();
        let probe = Probe::new();
        runtime.block_on(async {
            for index in 0..4 {
                let body_probe = Arc::clone(&probe);
                worker
                    .submit(format!("t{index}"), move || {
                        body_probe.watch(std::future::pending())
                    })
                    .await
                    .unwrap();
            }
            assert!(eventually(ms(1_000), || probe.called() == 2).await, "{flavour}");
        });
        drop(runtime);
        assert_eq!(probe.alive(), 0, "{flavour}");

        let fresh = reliability::current_thread();
        fresh.block_on(watchdog("after the runtime was dropped", async {
            for index in 0..4 {
                let id = format!("t{index}");
                assert_eq!(
                    worker.get_task_status(&id).await,
                    Some(TaskStatus::Cancelled),
                    "{flavour}: {id}"
                );
                assert_eq!(worker.wait(&id).await, Some(TaskStatus::Cancelled));
            }
            assert_eq!(worker.running_task_count().await, 0);
            worker.submit("t0", || async { Ok(()) }).await.unwrap();
            assert_eq!(worker.wait("t0").await, Some(TaskStatus::Completed), "{flavour}");
            assert_eq!(worker.shutdown().await.total(), 0);
        }));
    }
}

/// Thousands of tasks on one current-thread runtime, with the usual mix of ends: the worker
/// does not depend on extra threads for anything.
#[test]
#[cfg_attr(miri, ignore = "2,000 tasks: too slow under Miri")]
fn many_tasks_on_a_current_thread_runtime() {
    quiet_intended_panics();
    let runtime = reliability::current_thread();
    runtime.block_on(watchdog("current-thread mix", async {
        let worker = Worker::builder().max_concurrent(8).build();
        let done = Arc::new(AtomicUsize::new(0));
        for index in 0..2_000_u32 {
            let done = Arc::clone(&done);
            worker
                .submit(format!("t{index}"), move || async move {
                    tokio::task::yield_now().await;
                    done.fetch_add(1, Ordering::SeqCst);
                    match index % 4 {
                        0 | 1 => Ok(()),
                        2 => anyhow::bail!("even"),
                        _ => std::panic::panic_any(index),
                    }
                })
                .await
                .unwrap();
        }
        for index in 0..2_000_u32 {
            let status = worker.wait(&format!("t{index}")).await.unwrap();
            let expected = match index % 4 {
                0 | 1 => TaskStatus::Completed,
                2 => TaskStatus::Failed("even".into()),
                _ => TaskStatus::Failed("panicked: Box<dyn Any>".into()),
            };
            assert_eq!(status, expected, "t{index}");
        }
        assert_eq!(done.load(Ordering::SeqCst), 2_000);
        assert_eq!(worker.cleanup_finished_tasks().await, 2_000);
    }));
}

/// A runtime dropped before a task was ever polled: the task never started, yet its entry must
/// still reach a terminal status (`Cancelled`), not stay `Pending` forever with `wait` hanging.
/// (The same happens when the shutdown drain aborts a task that the runtime had not polled yet
/// by the deadline: found by ThreadSanitizer's slow schedule in `races::shutdowns_racing`.)
#[test]
fn a_runtime_dropped_before_a_task_first_ran() {
    for (flavour, runtime) in both_flavours() {
        let worker = Worker::new();
        let called = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&called);
        // `submit` completes at its first poll; the runtime never gets to poll the task.
        runtime
            .block_on(worker.submit("never-polled", move || async move {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            }))
            .unwrap();
        drop(runtime);
        // A multi-thread runtime may have run the task on a worker thread before it was dropped;
        // a current-thread runtime never polls it outside `block_on`.
        let expected = if called.load(Ordering::SeqCst) {
            assert_eq!(flavour, "multi_thread", "the current-thread runtime ran the task");
            TaskStatus::Completed
        } else {
            TaskStatus::Cancelled
        };

        let fresh = reliability::current_thread();
        fresh.block_on(watchdog("status after the runtime was dropped", async {
            assert_eq!(
                worker.get_task_status("never-polled").await,
                Some(expected.clone()),
                "{flavour}: a task whose runtime is gone must not stay Pending"
            );
            let waited = tokio::time::timeout(ms(500), worker.wait("never-polled")).await;
            assert_eq!(waited, Ok(Some(expected)), "{flavour}: wait hung");
            assert_eq!(worker.shutdown().await.total(), 0);
        }));
    }
}
