//! Panics in a task's closure or body: recorded as `Failed("panicked: ...")`, logged, and
//! contained to that task.

mod common;

use background_worker::{TaskStatus, Worker};
use common::{forever, sleep_secs};

fn panicked(message: &str) -> Option<TaskStatus> {
    Some(TaskStatus::Failed(format!("panicked: {message}")))
}

#[tokio::test(start_paused = true)]
async fn panic_in_the_body_fails_the_task_with_its_message() {
    let worker = Worker::new();
    worker
        .submit("job", || async { panic!("bad input") })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, panicked("bad input"));
}

#[tokio::test(start_paused = true)]
async fn panic_after_an_await_fails_the_task_with_its_formatted_message() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(2).await;
            let row = 42;
            panic!("bad row {row}");
        })
        .await
        .unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("job").await, Some(TaskStatus::Running));

    assert_eq!(worker.wait("job").await, panicked("bad row 42"));
}

#[tokio::test(start_paused = true)]
async fn panic_in_a_context_body_fails_the_task() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |ctx| async move { panic!("task {} exploded", ctx.id()) })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, panicked("task job exploded"));
}

#[tokio::test(start_paused = true)]
async fn panic_in_the_closure_itself_fails_the_task() {
    let worker = Worker::new();
    worker
        .submit("job", || -> std::future::Ready<anyhow::Result<()>> {
            panic!("closure blew up")
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, panicked("closure blew up"));
}

#[tokio::test(start_paused = true)]
async fn panic_in_a_context_closure_itself_fails_the_task() {
    let worker = Worker::new();
    worker
        .submit_with_context("job", |_ctx| -> std::future::Ready<anyhow::Result<()>> {
            panic!("context closure blew up")
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, panicked("context closure blew up"));
}

#[tokio::test(start_paused = true)]
async fn panic_with_a_non_string_payload_fails_the_task() {
    let worker = Worker::new();
    worker
        .submit("job", || async { std::panic::panic_any(42_u32) })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, panicked("Box<dyn Any>"));
}

#[tokio::test(start_paused = true)]
async fn panic_with_a_non_string_payload_in_the_closure_fails_the_task() {
    let worker = Worker::new();
    worker
        .submit("job", || -> std::future::Ready<anyhow::Result<()>> {
            std::panic::panic_any(vec![1, 2, 3])
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("job").await, panicked("Box<dyn Any>"));
}

#[tokio::test(start_paused = true)]
async fn panic_leaves_other_tasks_and_the_worker_unaffected() {
    let worker = Worker::new();
    worker
        .submit("survivor", || async {
            sleep_secs(5).await;
            Ok(())
        })
        .await
        .unwrap();
    worker.submit("waiting", forever).await.unwrap();
    worker
        .submit("boom", || async {
            sleep_secs(1).await;
            panic!("boom");
        })
        .await
        .unwrap();

    assert_eq!(worker.wait("boom").await, panicked("boom"));
    assert_eq!(
        worker.get_task_status("survivor").await,
        Some(TaskStatus::Running)
    );
    assert_eq!(worker.get_task_status("waiting").await, Some(TaskStatus::Running));
    assert_eq!(worker.running_task_count().await, 2);

    // The worker still takes work, and the other tasks finish normally.
    worker.submit("after", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("after").await, Some(TaskStatus::Completed));
    assert_eq!(worker.wait("survivor").await, Some(TaskStatus::Completed));
    assert_eq!(worker.cancel("waiting").await, Ok(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn panicked_id_can_be_submitted_again() {
    let worker = Worker::new();
    worker.submit("job", || async { panic!("first") }).await.unwrap();
    assert_eq!(worker.wait("job").await, panicked("first"));

    worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
}
