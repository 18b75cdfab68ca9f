//! Submit to completion: N trivial tasks until all are finished, for `Worker` and for tokio's own
//! primitives. Every baseline task takes its id (as the `Worker` does) and drops it.
//!
//! Each variant comes in two shapes: from the calling task alone (the functions `worker`,
//! `spawn`, ...), and from several submitter tasks at once, each with its own share of the ids
//! ([`Variant::run`] with more than one chunk). The ids (and, for `Worker`, the copies it waits on)
//! are made by [`Variant::prepare`], outside the timed region.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use background_worker::Worker;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Submits every id (with `submit`, or `submit_with_context` if `context`), then waits for each
/// by name. The names waited on are the caller's, made and dropped outside the timed region (as
/// the ids are: each task drops its own).
async fn submit_then_wait(worker: &Worker, names: &[String], owned: Vec<String>, context: bool) {
    if context {
        for id in owned {
            worker
                .submit_with_context(id, |_ctx| async { Ok(()) })
                .await
                .expect("submit");
        }
    } else {
        for id in owned {
            worker.submit(id, || async { Ok(()) }).await.expect("submit");
        }
    }
    for id in names {
        black_box(worker.wait(id).await);
    }
}

/// `Worker::submit` each id, then `wait` each id.
pub async fn worker(names: Vec<String>, owned: Vec<String>) -> Duration {
    worker_in_one_task(names, owned, false).await
}

/// `Worker::submit_with_context` each id (the body ignores its context), then `wait` each id.
pub async fn worker_context(names: Vec<String>, owned: Vec<String>) -> Duration {
    worker_in_one_task(names, owned, true).await
}

async fn worker_in_one_task(names: Vec<String>, owned: Vec<String>, context: bool) -> Duration {
    let (elapsed, worker) = worker_kept(&names, owned, context).await;
    drop(worker); // the finished entries are freed outside the timed region
    elapsed
}

/// As `worker_in_one_task`, but hands the finished `Worker` back to be dropped by the caller.
async fn worker_kept(names: &[String], owned: Vec<String>, context: bool) -> (Duration, Worker) {
    let worker = Worker::new();
    let start = Instant::now();
    submit_then_wait(&worker, names, owned, context).await;
    (start.elapsed(), worker)
}

/// `Worker::submit` each id on `worker` (built by the caller, with whatever settings it
/// measures), then `wait` each id; the worker is handed back, to be dropped outside the timed
/// region (and so are the names, handed back with it).
pub async fn on_worker(
    worker: Worker,
    names: Vec<String>,
    owned: Vec<String>,
) -> (Duration, (Worker, Vec<String>)) {
    let start = Instant::now();
    submit_then_wait(&worker, &names, owned, false).await;
    (start.elapsed(), (worker, names))
}

/// `tokio::spawn` each id's task, then await every `JoinHandle`.
pub async fn spawn(owned: Vec<String>) -> Duration {
    let start = Instant::now();
    spawn_then_join(owned).await;
    start.elapsed()
}

async fn spawn_then_join(owned: Vec<String>) {
    let mut handles = Vec::with_capacity(owned.len());
    for id in owned {
        handles.push(tokio::spawn(async move { drop(black_box(id)) }));
    }
    for handle in handles {
        handle.await.expect("join");
    }
}

/// A `JoinSet`, drained with `join_next`.
pub async fn join_set(owned: Vec<String>) -> Duration {
    let start = Instant::now();
    join_set_drained(owned).await;
    start.elapsed()
}

async fn join_set_drained(owned: Vec<String>) {
    let mut set = JoinSet::new();
    for id in owned {
        set.spawn(async move { drop(black_box(id)) });
    }
    while let Some(joined) = set.join_next().await {
        joined.expect("join");
    }
}

/// A `TaskTracker` with a child `CancellationToken` per task, the body raced against its token
/// (what `Worker::submit` does), then `close` + `wait`.
pub async fn tracker(owned: Vec<String>) -> Duration {
    let start = Instant::now();
    let tracker = TaskTracker::new();
    let root = CancellationToken::new();
    tracker_spawn(&tracker, &root, owned);
    tracker.close();
    tracker.wait().await;
    start.elapsed()
}

fn tracker_spawn(tracker: &TaskTracker, root: &CancellationToken, owned: Vec<String>) {
    for id in owned {
        let token = root.child_token();
        tracker.spawn(async move {
            tokio::select! {
                biased;
                () = token.cancelled() => {}
                () = async { drop(black_box(id)) } => {}
            }
        });
    }
}

/// A submit-to-completion variant, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `Worker::submit` + `Worker::wait`.
    Worker,
    /// `Worker::submit_with_context` + `Worker::wait`.
    WorkerContext,
    /// `TaskTracker` + a child `CancellationToken` per task + `close` / `wait`.
    Tracker,
    /// `tokio::spawn` + await each `JoinHandle`.
    Spawn,
    /// `JoinSet::spawn` + `join_next`.
    JoinSet,
}

/// The ids of one run, split among its submitter tasks.
#[derive(Debug)]
pub struct Input {
    /// Per submitter: the ids to submit (moved into the tasks) and, for `Worker`, a copy to wait on.
    chunks: Vec<(Vec<String>, Vec<String>)>,
}

/// One finished run: its time, and what it leaves behind (a `Worker` full of finished entries,
/// and the names it waited on), which the caller drops outside the measured region (and, for
/// callgrind, outside the counted one).
#[derive(Debug)]
pub struct Run {
    /// From the first submit until every task finished.
    pub elapsed: Duration,
    /// The finished `Worker`, if the variant has one.
    pub leftover: Option<Worker>,
    /// The names a `Worker` variant waited on, per submitter.
    pub waited: Vec<Vec<String>>,
}

impl Run {
    fn of(elapsed: Duration) -> Self {
        Self {
            elapsed,
            leftover: None,
            waited: Vec::new(),
        }
    }
}

/// A run in progress.
pub type Timed = Pin<Box<dyn Future<Output = Run> + Send>>;

impl Variant {
    /// Every variant, in the order the tables show them.
    pub const ALL: [Variant; 5] = [
        Variant::Worker,
        Variant::WorkerContext,
        Variant::Tracker,
        Variant::Spawn,
        Variant::JoinSet,
    ];

    /// The variant's name on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Worker => "worker",
            Variant::WorkerContext => "worker_context",
            Variant::Tracker => "tracker",
            Variant::Spawn => "spawn",
            Variant::JoinSet => "join_set",
        }
    }

    /// The variant named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|variant| variant.name() == name)
    }

    /// Copies `names` for one run, split among `submitters` tasks (call outside the timed
    /// region).
    pub fn prepare(self, names: &[String], submitters: usize) -> Input {
        let per = names.len().div_ceil(submitters.max(1)).max(1);
        let waits = matches!(self, Variant::Worker | Variant::WorkerContext);
        let chunks = names
            .chunks(per)
            .map(|chunk| (chunk.to_vec(), if waits { chunk.to_vec() } else { Vec::new() }))
            .collect();
        Input { chunks }
    }

    /// Runs the variant on `input` and returns the time from the first submit until every task
    /// finished, and the finished `Worker` to drop. With one chunk, the calling task submits everything; with more, one spawned
    /// submitter task per chunk does (and the time includes spawning and joining them).
    pub fn run(self, input: Input) -> Timed {
        let mut chunks = input.chunks;
        if chunks.len() == 1 {
            let (owned, names) = chunks.pop().expect("one chunk");
            return Box::pin(async move {
                match self {
                    Variant::Worker | Variant::WorkerContext => {
                        let (elapsed, worker) =
                            worker_kept(&names, owned, self == Variant::WorkerContext).await;
                        Run {
                            elapsed,
                            leftover: Some(worker),
                            waited: vec![names],
                        }
                    }
                    Variant::Tracker => Run::of(tracker(owned).await),
                    Variant::Spawn => Run::of(spawn(owned).await),
                    Variant::JoinSet => Run::of(join_set(owned).await),
                }
            });
        }
        Box::pin(async move {
            match self {
                Variant::Worker | Variant::WorkerContext => {
                    let context = self == Variant::WorkerContext;
                    let worker = Worker::new();
                    let start = Instant::now();
                    let submitters: Vec<_> = chunks
                        .into_iter()
                        .map(|(owned, names)| {
                            let worker = worker.clone();
                            tokio::spawn(async move {
                                submit_then_wait(&worker, &names, owned, context).await;
                                names
                            })
                        })
                        .collect();
                    let mut waited = Vec::with_capacity(submitters.len());
                    for submitter in submitters {
                        waited.push(submitter.await.expect("submitter task panicked"));
                    }
                    Run {
                        elapsed: start.elapsed(),
                        leftover: Some(worker),
                        waited,
                    }
                }
                Variant::Tracker => {
                    let start = Instant::now();
                    let tracker = TaskTracker::new();
                    let root = CancellationToken::new();
                    let submitters: Vec<_> = chunks
                        .into_iter()
                        .map(|(owned, _)| {
                            let (tracker, root) = (tracker.clone(), root.clone());
                            tokio::spawn(async move { tracker_spawn(&tracker, &root, owned) })
                        })
                        .collect();
                    join_all(submitters).await;
                    tracker.close();
                    tracker.wait().await;
                    Run::of(start.elapsed())
                }
                Variant::Spawn => {
                    let start = Instant::now();
                    let submitters: Vec<_> = chunks
                        .into_iter()
                        .map(|(owned, _)| tokio::spawn(spawn_then_join(owned)))
                        .collect();
                    join_all(submitters).await;
                    Run::of(start.elapsed())
                }
                Variant::JoinSet => {
                    let start = Instant::now();
                    let submitters: Vec<_> = chunks
                        .into_iter()
                        .map(|(owned, _)| tokio::spawn(join_set_drained(owned)))
                        .collect();
                    join_all(submitters).await;
                    Run::of(start.elapsed())
                }
            }
        })
    }
}

async fn join_all(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        handle.await.expect("submitter task panicked");
    }
}
