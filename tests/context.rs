//! A context task's token is made when its body first asks for it. Whenever that is (before,
//! during or after the request to stop, or never), the body sees the request the same way.

mod common;

use background_worker::{TaskStatus, Worker};
use common::{secs, settle, sleep_secs, within, worker_with_timeouts, Flag};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_body_that_only_polls_is_cancelled_sees_cancel_and_winds_down() {
    let worker = worker_with_timeouts(5, 5);
    let wound_down = Flag::new();
    let flag = wound_down.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            while !ctx.is_cancelled() {
                sleep_secs(1).await;
            }
            flag.set(); // not reached if the body was aborted at its sleep
            Ok(())
        })
        .await
        .unwrap();
    settle().await;
    let start = Instant::now();

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));

    assert!(wound_down.is_set(), "the body was cut off instead of told");
    assert!(
        start.elapsed() <= secs(1),
        "cancel waited for the next check, not the timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_asked_for_after_the_request_to_stop_is_already_cancelled() {
    let worker = worker_with_timeouts(5, 5);
    let saw = Flag::new();
    let flag = saw.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            sleep_secs(2).await;
            if ctx.token().is_cancelled() {
                flag.set();
            }
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(within(3, worker.cancel("job")).await, Ok(TaskStatus::Cancelled));
    assert!(saw.is_set());
}

#[tokio::test(start_paused = true)]
async fn clones_of_a_context_share_one_token() {
    let worker = worker_with_timeouts(5, 5);
    let shared = Flag::new();
    let flag = shared.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            let other = ctx.clone();
            let early = other.token().clone();
            ctx.cancelled().await;
            if early.is_cancelled() && other.is_cancelled() {
                flag.set();
            }
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert!(shared.is_set());
}

/// The stop hands the slot's token over to be cancelled (the slot keeps none): a clone of the
/// context that made no token before the stop still gets a cancelled one, and so does a token
/// asked for through the context that made the first one.
#[tokio::test(start_paused = true)]
async fn after_the_stop_every_token_asked_for_is_cancelled() {
    let worker = worker_with_timeouts(5, 5);
    let saw = Flag::new();
    let flag = saw.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            let late = ctx.clone(); // made before `ctx` makes the token: it has none of its own
            ctx.cancelled().await;
            if late.token().is_cancelled() && late.is_cancelled() && ctx.token().is_cancelled() {
                flag.set();
            }
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));
    assert!(saw.is_set(), "a token asked for after the stop was not cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_body_cancelling_its_own_token_ends_cancelled() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move {
            ctx.token().cancel();
            assert!(ctx.is_cancelled());
            Ok(())
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn shutdown_tells_bodies_with_and_without_a_token_and_aborts_none() {
    let worker = worker_with_timeouts(5, 5);
    let (polled, watched) = (Flag::new(), Flag::new());
    let flag = polled.clone();
    worker
        .submit_with_context("polls", move |ctx| async move {
            while !ctx.is_cancelled() {
                sleep_secs(1).await;
            }
            flag.set();
            Ok(())
        })
        .await
        .unwrap();
    let flag = watched.clone();
    worker
        .submit_with_context("watches", move |ctx| async move {
            ctx.cancelled().await;
            flag.set();
            Ok(())
        })
        .await
        .unwrap();
    settle().await;

    let report = worker.shutdown().await;

    assert!(polled.is_set() && watched.is_set());
    assert_eq!(report.cancelled(), 2, "{report:?}");
    assert_eq!(report.aborted(), 0, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_context_kept_past_its_task_hands_out_a_cancelled_token() {
    let worker = Worker::new();
    let (kept, keep) = tokio::sync::oneshot::channel();
    worker
        .submit_with_context("job", move |ctx| async move {
            let _ = kept.send(ctx);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));

    let ctx = keep.await.unwrap();

    assert!(!ctx.is_cancelled(), "the task completed: nobody asked it to stop");
    assert!(ctx.token().is_cancelled(), "its task is over");
}

#[tokio::test(start_paused = true)]
async fn a_wait_begun_before_the_token_was_made_sees_a_clone_cancel_it() {
    let worker = Worker::new();
    let woke = Flag::new();
    let flag = woke.clone();
    worker
        .submit_with_context("job", move |ctx| async move {
            let clone = ctx.clone();
            tokio::spawn(async move {
                sleep_secs(1).await; // the body's wait is parked by now, with no token
                clone.token().cancel();
            });
            ctx.cancelled().await; // no timer of its own: only a wake-up ends this
            flag.set();
            Ok(())
        })
        .await
        .unwrap();

    assert_eq!(within(5, worker.wait("job")).await, Some(TaskStatus::Cancelled));
    assert!(woke.is_set(), "the wait did not see the token cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_clone_waiting_in_another_task_is_told_when_its_task_ends() {
    let worker = Worker::new();
    let (told, tell) = tokio::sync::oneshot::channel();
    worker
        .submit_with_context("job", move |ctx| async move {
            let clone = ctx.clone();
            tokio::spawn(async move {
                clone.cancelled().await;
                let _ = told.send(());
            });
            sleep_secs(1).await; // the clone's wait is parked by now
            Ok(())
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert_eq!(within(1, tell).await, Ok(()), "the clone's wait was never woken");
}

#[tokio::test(start_paused = true)]
async fn cancel_wakes_the_body_waiting_for_its_stop_and_a_waiter_for_its_status() {
    let worker = worker_with_timeouts(5, 5);
    worker
        .submit_with_context("job", |ctx| async move {
            loop {
                tokio::select! {
                    () = ctx.cancelled() => return Ok(()),
                    () = sleep_secs(1) => {} // a new wait each round, from the same task
                }
            }
        })
        .await
        .unwrap();
    let waiter = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.wait("job").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await; // between two rounds
    let start = Instant::now();

    assert_eq!(worker.cancel("job").await, Ok(TaskStatus::Cancelled));

    assert!(
        start.elapsed() < std::time::Duration::from_millis(100),
        "the body's wait was not woken by the stop (it saw it at its next round)"
    );
    assert_eq!(within(1, waiter).await.unwrap(), Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn cancel_of_a_context_task_waiting_for_a_permit_ends_it_at_once() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker
        .submit_with_context("blocker", |_ctx| async {
            sleep_secs(60).await;
            Ok(())
        })
        .await
        .unwrap();
    let ran = Flag::new();
    let flag = ran.clone();
    worker
        .submit_with_context("queued", move |_ctx| async move {
            flag.set();
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("queued").await, Some(TaskStatus::Pending));
    let start = Instant::now();

    assert_eq!(worker.cancel("queued").await, Ok(TaskStatus::Cancelled));

    assert_eq!(
        start.elapsed(),
        secs(0),
        "the wait for a permit did not see the stop"
    );
    worker.cancel("blocker").await.unwrap();
    settle().await;
    assert!(
        !ran.is_set(),
        "a cancelled task waiting for a permit ran after all"
    );
}
