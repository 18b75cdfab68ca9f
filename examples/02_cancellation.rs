//! Cancellation: cooperative wind-down versus forced abort.
//!
//! Two tasks from `submit_with_context` process batches. The cooperative one watches its
//! `TaskContext`: when it is cancelled it saves a checkpoint and returns, and `cancel` returns as
//! soon as it has. The stubborn one never looks at its token, so `cancel` waits the whole cancel
//! timeout (1 s here), then aborts it: it is cut off mid-batch, never runs again, and is marked
//! `Cancelled` too. Both end `Cancelled`; only the first got to clean up after itself.
//!
//! (A task from plain `submit` needs neither: its body is dropped at its next `.await` as soon as
//! it is cancelled.)
//!
//! Run it with `cargo run --example 02_cancellation`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use background_worker::Worker;
use tokio::time::sleep;

const BATCH: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let worker = Worker::builder().cancel_timeout(Duration::from_secs(1)).build();

    worker
        .submit_with_context("cooperative", |ctx| async move {
            let mut batches = 0;
            loop {
                tokio::select! {
                    () = ctx.cancelled() => {
                        println!("   [{}] told to stop after {batches} batches, checkpointing", ctx.id());
                        sleep(Duration::from_millis(200)).await;
                        println!("   [{}] checkpoint saved, returning", ctx.id());
                        return Ok(());
                    }
                    () = sleep(BATCH) => batches += 1,
                }
            }
        })
        .await?;

    let stubborn_batches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&stubborn_batches);
    worker
        .submit_with_context("stubborn", move |_ctx| async move {
            loop {
                sleep(BATCH).await; // never checks its token
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await?;

    sleep(Duration::from_millis(550)).await;

    println!("== cooperative: cancel signals the token, the task winds down on its own");
    let started = Instant::now();
    let status = worker.cancel("cooperative").await?;
    let elapsed = started.elapsed();
    println!("cancel(\"cooperative\") -> {status} after {elapsed:.1?}\n");

    println!("== stubborn: the token is ignored, so cancel aborts it at the timeout");
    let started = Instant::now();
    let status = worker.cancel("stubborn").await?;
    let at_abort = stubborn_batches.load(Ordering::SeqCst);
    let elapsed = started.elapsed();
    println!("cancel(\"stubborn\") -> {status} after {elapsed:.1?}");
    sleep(Duration::from_millis(500)).await;
    let later = stubborn_batches.load(Ordering::SeqCst);
    println!("stubborn batches: {at_abort} at the abort, {later} half a second later (it no longer runs)");

    let report = worker.shutdown().await;
    println!("\nshutdown: {} tasks left to drain", report.total());
    Ok(())
}
