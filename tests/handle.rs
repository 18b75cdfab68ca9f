//! The `Worker` handle: a `Clone + Send + Sync` wrapper whose clones share everything, and what
//! dropping the last one does.

mod common;

use background_worker::{TaskStatus, Worker};
use common::{settle, sleep_secs, Counter, Flag};

// Compile-time: a `Worker` can be cloned into handlers and moved across threads.
const _: () = {
    const fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    assert_clone_send_sync::<Worker>();
};

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test(start_paused = true)]
async fn worker_futures_are_send_so_they_run_on_spawned_tasks() {
    let worker = Worker::new();
    let clone = worker.clone();
    let handle = tokio::spawn(assert_send(async move {
        clone.submit("job", || async { Ok(()) }).await.unwrap();
        clone.wait("job").await
    }));

    assert_eq!(handle.await.unwrap(), Some(TaskStatus::Completed));
    assert_eq!(
        assert_send(worker.get_task_status("job")).await,
        Some(TaskStatus::Completed)
    );
    assert_eq!(assert_send(worker.cancel("job")).await, Ok(TaskStatus::Completed));
    assert_eq!(assert_send(worker.shutdown()).await.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn clones_share_tasks_and_shutdown_state() {
    let worker = Worker::new();
    let clone = worker.clone();
    clone.submit("job", std::future::pending).await.unwrap();

    assert!(worker.has_task("job"));
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert_eq!(clone.get_task_status("job").await, Some(TaskStatus::Cancelled));

    clone.shutdown().await;
    assert!(worker.is_shutting_down());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_cancels_every_task_token() {
    let worker = Worker::new();
    let told = Counter::new();
    for id in ["a", "b", "c"] {
        let told = told.clone();
        worker
            .submit_with_context(id, move |ctx| async move {
                ctx.cancelled().await;
                told.bump();
                Ok(())
            })
            .await
            .unwrap();
    }
    settle().await;
    sleep_secs(5).await;
    assert_eq!(told.get(), 0);

    drop(worker);
    sleep_secs(1).await;

    assert_eq!(told.get(), 3, "not every task was told to stop");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_stops_submitted_bodies_at_their_await() {
    let worker = Worker::new();
    let ticks = Counter::new();
    let body_ticks = ticks.clone();
    worker
        .submit("ticker", move || async move {
            loop {
                sleep_secs(1).await;
                body_ticks.bump();
            }
        })
        .await
        .unwrap();
    sleep_secs(3).await;
    assert!(ticks.get() > 0);

    drop(worker);
    settle().await;
    let at_drop = ticks.get();
    sleep_secs(60).await;

    assert_eq!(
        ticks.get(),
        at_drop,
        "the body kept running after the last handle was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_means_pending_tasks_never_start() {
    let worker = Worker::new();
    let called = Flag::new();
    let call = called.clone();
    worker
        .submit("pending", move || {
            call.set();
            async { Ok(()) }
        })
        .await
        .unwrap();

    drop(worker);
    sleep_secs(10).await;

    assert!(!called.is_set());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_clone_that_is_not_the_last_cancels_nothing() {
    let worker = Worker::new();
    let told = Flag::new();
    let tell = told.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            ctx.cancelled().await;
            tell.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    drop(worker.clone());
    sleep_secs(10).await;

    assert!(!told.is_set());
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));
}
