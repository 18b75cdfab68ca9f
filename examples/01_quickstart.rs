//! Quick start: the life of a few named background tasks.
//!
//! This example submits four tasks to one `Worker` and follows them by name: a report that
//! completes, a sync that fails (its status keeps the error and its cause), a poller that is
//! cancelled, and an export that is still running when the program shuts down. Along the way it
//! queries statuses and counts, shows that a live id cannot be submitted twice, cleans up finished
//! entries, and ends with `shutdown`, which cancels what is left, waits for it and prints a report.
//! After that, the worker refuses new work.
//!
//! Run it with `cargo run --example 01_quickstart`.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use background_worker::{TaskStatus, Worker};
use tokio::time::sleep;

const IDS: [&str; 4] = ["nightly-report", "sync-users", "poll-inbox", "export"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let worker = Worker::builder()
        .cancel_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(2))
        .build();

    println!("== submit");
    worker
        .submit("nightly-report", || async {
            sleep(Duration::from_millis(300)).await; // render the report
            Ok(())
        })
        .await?;
    // Registered before it runs, so it is visible at once.
    println!("nightly-report is {}", status(&worker, "nightly-report").await);

    worker
        .submit("sync-users", || async {
            sleep(Duration::from_millis(100)).await;
            Err(anyhow!("HTTP 503 from users.example.com")).context("could not fetch page 3")
        })
        .await?;
    worker
        .submit("poll-inbox", || async {
            loop {
                sleep(Duration::from_millis(50)).await; // check the inbox, forever
            }
        })
        .await?;
    worker
        .submit_with_context("export", |ctx| async move {
            ctx.cancelled().await; // exports until told to stop
            println!("   export: told to stop, flushing the last batch");
            sleep(Duration::from_millis(200)).await;
            Ok(())
        })
        .await?;

    sleep(Duration::from_millis(50)).await;
    println!("\n== query");
    print_statuses(&worker).await;
    println!(
        "tracked: {}, running: {}",
        worker.task_count(),
        worker.running_task_count().await
    );

    println!("\n== a live id cannot be reused");
    if let Err(error) = worker.submit("poll-inbox", || async { Ok(()) }).await {
        println!("submit(\"poll-inbox\") again: {error}");
    }

    println!("\n== wait");
    println!("nightly-report: {}", show(worker.wait("nightly-report").await));
    println!("sync-users:     {}", show(worker.wait("sync-users").await));

    println!("\n== cancel");
    println!("cancel(\"poll-inbox\") -> {}", worker.cancel("poll-inbox").await?);
    match worker.cancel("no-such-task").await {
        Ok(status) => println!("cancel(\"no-such-task\") -> {status}"),
        Err(error) => println!("cancel(\"no-such-task\") -> error: {error}"),
    }

    println!("\n== clean up finished entries");
    println!(
        "removed {} finished entries",
        worker.cleanup_finished_tasks().await
    );
    print_statuses(&worker).await;

    println!("\n== shutdown");
    let report = worker.shutdown().await;
    for task in report.tasks() {
        println!("{:<15} {:?}", task.id, task.outcome);
    }
    println!(
        "{} drained in {:.1?}: {} completed, {} failed, {} cancelled, {} aborted",
        report.total(),
        report.elapsed(),
        report.completed(),
        report.failed(),
        report.cancelled(),
        report.aborted()
    );
    println!("export is now {}", status(&worker, "export").await);

    if let Err(error) = worker.submit("too-late", || async { Ok(()) }).await {
        println!("submit after shutdown: {error}");
    }
    Ok(())
}

async fn status(worker: &Worker, id: &str) -> String {
    show(worker.get_task_status(id).await)
}

fn show(status: Option<TaskStatus>) -> String {
    status.map_or_else(|| "not tracked".to_owned(), |status| status.to_string())
}

async fn print_statuses(worker: &Worker) {
    for id in IDS {
        println!("{id:<15} {}", status(worker, id).await);
    }
}
