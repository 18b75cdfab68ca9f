//! `cleanup_finished_tasks`: removes terminal entries only, and says how many.

mod common;

use anyhow::anyhow;
use background_worker::{TaskStatus, Worker};
use common::{forever, settle, sleep_secs, Flag};

#[tokio::test(start_paused = true)]
async fn cleanup_removes_only_terminal_entries_and_returns_how_many() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker.submit("completed", || async { Ok(()) }).await.unwrap();
    worker
        .submit("failed", || async { Err(anyhow!("no")) })
        .await
        .unwrap();
    worker.submit("cancelled", forever).await.unwrap();
    settle().await;
    worker.cancel("cancelled").await.unwrap();
    worker.submit("running", forever).await.unwrap();
    worker.submit("pending", forever).await.unwrap();
    sleep_secs(1).await;
    assert_eq!(worker.get_task_status("running").await, Some(TaskStatus::Running));
    assert_eq!(worker.get_task_status("pending").await, Some(TaskStatus::Pending));

    assert_eq!(worker.cleanup_finished_tasks().await, 3);

    assert_eq!(worker.task_count(), 2);
    for gone in ["completed", "failed", "cancelled"] {
        assert!(!worker.has_task(gone), "{gone} was not removed");
    }
    assert_eq!(worker.get_task_status("running").await, Some(TaskStatus::Running));
    assert_eq!(worker.get_task_status("pending").await, Some(TaskStatus::Pending));
}

#[tokio::test(start_paused = true)]
async fn cleanup_with_nothing_finished_returns_zero() {
    let worker = Worker::new();
    assert_eq!(worker.cleanup_finished_tasks().await, 0);

    worker.submit("pending", forever).await.unwrap();
    assert_eq!(worker.cleanup_finished_tasks().await, 0);
    assert!(worker.has_task("pending"));
}

#[tokio::test(start_paused = true)]
async fn second_cleanup_finds_nothing_more() {
    let worker = Worker::new();
    worker.submit("a", || async { Ok(()) }).await.unwrap();
    worker.submit("b", || async { Ok(()) }).await.unwrap();
    settle().await;

    assert_eq!(worker.cleanup_finished_tasks().await, 2);
    assert_eq!(worker.cleanup_finished_tasks().await, 0);
    assert_eq!(worker.task_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn cleanup_leaves_a_running_task_to_finish_normally() {
    let worker = Worker::new();
    worker
        .submit("job", || async {
            sleep_secs(5).await;
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(1).await;

    assert_eq!(worker.cleanup_finished_tasks().await, 0);

    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
    assert_eq!(worker.cleanup_finished_tasks().await, 1);
}

#[tokio::test(start_paused = true)]
async fn cleaned_up_id_can_be_submitted_again() {
    let worker = Worker::new();
    worker
        .submit("job", || async { Err(anyhow!("first")) })
        .await
        .unwrap();
    worker.wait("job").await;
    worker.cleanup_finished_tasks().await;

    worker.submit("job", || async { Ok(()) }).await.unwrap();
    assert_eq!(worker.wait("job").await, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn cleanup_racing_tasks_that_start_and_finish_never_removes_a_live_entry() {
    // Tasks wait for permits, start and finish every second while another task cleans up every
    // second. An entry may vanish only after its body returned.
    let worker = Worker::builder().max_concurrent(3).build();
    let mut returned = Vec::new();
    for i in 0..12_u64 {
        let done = Flag::new();
        returned.push(done.clone());
        worker
            .submit(format!("job-{i:02}"), move || async move {
                sleep_secs(1 + i % 4).await;
                done.set();
                Ok(())
            })
            .await
            .unwrap();
    }
    let cleaner = worker.clone();
    let cleaning = tokio::spawn(async move {
        let mut removed = 0;
        for _ in 0..30 {
            removed += cleaner.cleanup_finished_tasks().await;
            sleep_secs(1).await;
        }
        removed
    });

    for _ in 0..30 {
        for (i, done) in returned.iter().enumerate() {
            let id = format!("job-{i:02}");
            if !done.is_set() {
                let status = worker.get_task_status(&id).await;
                assert!(
                    matches!(status, Some(TaskStatus::Pending | TaskStatus::Running)),
                    "{id} is {status:?} before its body returned"
                );
            }
        }
        sleep_secs(1).await;
    }

    assert!(returned.iter().all(Flag::is_set));
    assert_eq!(cleaning.await.unwrap(), 12);
    assert_eq!(worker.task_count(), 0);
}
