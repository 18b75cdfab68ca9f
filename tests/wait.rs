//! `wait` with many waiters, waiters that give up, and a wait that moves between tasks: every
//! waiter still there when the task settles is woken with its status. (A wait yields once
//! before it registers its waker: the tests poll twice where they need it registered.)

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use background_worker::{TaskStatus, Worker};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Awaits a waiting task, failing (not hanging) if it is never woken: paused time runs ahead to
/// the deadline once nothing else can run.
async fn woken(handle: JoinHandle<Option<TaskStatus>>) -> Option<TaskStatus> {
    tokio::time::timeout(Duration::from_secs(3600), handle)
        .await
        .expect("a waiter was never woken")
        .unwrap()
}

/// Submits `id`, whose body finishes once `release` gets a permit.
async fn submit_held(worker: &Worker, id: &str) -> Arc<Semaphore> {
    let release = Arc::new(Semaphore::new(0));
    let held = Arc::clone(&release);
    worker
        .submit(id, move || async move {
            let _permit = held.acquire().await?;
            Ok(())
        })
        .await
        .unwrap();
    release
}

/// Spawns `n` tasks, each waiting for `id`, and lets every one of them register.
async fn waiters(worker: &Worker, id: &'static str, n: usize) -> Vec<JoinHandle<Option<TaskStatus>>> {
    let handles = (0..n)
        .map(|_| {
            let worker = worker.clone();
            tokio::spawn(async move { worker.wait(id).await })
        })
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    handles
}

#[tokio::test(start_paused = true)]
async fn every_waiter_of_a_task_is_woken_with_its_status() {
    let worker = Worker::new();
    let release = submit_held(&worker, "job").await;
    let handles = waiters(&worker, "job", 50).await;
    assert!(handles.iter().all(|handle| !handle.is_finished()));

    release.add_permits(1);

    for handle in handles {
        assert_eq!(woken(handle).await, Some(TaskStatus::Completed));
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_that_gave_up_do_not_keep_the_others_from_waking() {
    let worker = Worker::new();
    let release = submit_held(&worker, "job").await;
    let handles = waiters(&worker, "job", 6).await;

    // The first waiter, one in the middle and the last give up (their wait futures are dropped).
    let mut kept = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        if matches!(i, 0 | 3 | 5) {
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        } else {
            kept.push(handle);
        }
    }
    // And newcomers still register after them.
    kept.extend(waiters(&worker, "job", 2).await);
    release.add_permits(1);

    assert_eq!(kept.len(), 5);
    for handle in kept {
        assert_eq!(woken(handle).await, Some(TaskStatus::Completed));
    }
}

#[tokio::test(start_paused = true)]
async fn waits_given_up_again_and_again_leave_the_task_waitable() {
    let worker = Worker::new();
    let release = submit_held(&worker, "job").await;
    for _ in 0..10_000 {
        let waited = tokio::time::timeout(Duration::from_millis(1), worker.wait("job")).await;
        assert!(waited.is_err(), "the task is still held");
    }

    release.add_permits(1);

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn a_wait_polled_by_one_task_and_awaited_by_another_wakes_the_second() {
    let worker = Worker::new();
    let release = submit_held(&worker, "job").await;
    let mut wait = Box::pin({
        let worker = worker.clone();
        async move { worker.wait("job").await }
    });
    // Registered with a waker that wakes nobody (a wait yields once before it registers)...
    for _ in 0..2 {
        let polled = wait.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(polled.is_pending());
    }
    // ... then awaited by a task of its own, whose waker takes its place.
    let handle = tokio::spawn(wait);
    tokio::task::yield_now().await;

    release.add_permits(1);

    assert_eq!(woken(handle).await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn a_wait_dropped_after_the_task_settled_changes_nothing() {
    let worker = Worker::new();
    let release = submit_held(&worker, "job").await;
    {
        let mut wait = pin!(worker.wait("job"));
        for _ in 0..2 {
            let polled = wait.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(polled.is_pending());
        }
        release.add_permits(1);
        assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
        // Polled again, the first wait has its status too.
        match wait.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(status) => assert_eq!(status, Some(TaskStatus::Completed)),
            Poll::Pending => panic!("the task settled"),
        }
    }
    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Completed));
}
