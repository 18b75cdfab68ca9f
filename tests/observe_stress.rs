//! The transition hook under load (issue 10): 10^5 tasks on a multi-thread runtime, submitted,
//! re-submitted and cancelled by several driver tasks at once while a shutdown lands in the
//! middle, with an observer recording every transition. Checked for every task (every
//! submission, told apart by its generation): the observer saw exactly `Pending`, then
//! `Running` if and only if its closure was called, then one terminal status equal to the
//! task's real one (what the registry holds after the shutdown, or what `wait` returned before
//! its id was re-submitted). Nothing missing, nothing twice, nothing out of order.
//!
//! About 10 s in a debug build on 2 CPUs; `STRESS=1` runs 10^6 tasks.

mod reliability;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use background_worker::{SubmitError, TaskContext, TaskStatus, Transition, Worker};
use reliability::{multi_thread, quiet_intended_panics, stress, watchdog, Rng, INTENDED};

const DRIVERS: usize = 6;
const SHARDS: usize = 64;

/// Per id, every (generation, status) the observer was told, in the order it was told them.
type Shard = HashMap<String, Vec<(u64, TaskStatus)>>;

/// Every transition the observer saw, sharded by id.
#[derive(Default)]
struct Seen {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Seen {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        })
    }

    fn shard(&self, id: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(id) as usize % SHARDS]
    }

    fn record(&self, t: &Transition<'_>) {
        let mut shard = self.shard(t.id).lock().unwrap();
        match shard.get_mut(t.id) {
            Some(all) => all.push((t.generation, t.status.clone())),
            None => {
                shard.insert(t.id.to_owned(), vec![(t.generation, t.status.clone())]);
            }
        }
    }

    fn take(&self, id: &str) -> Vec<(u64, TaskStatus)> {
        self.shard(id).lock().unwrap().remove(id).unwrap_or_default()
    }

    fn left(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().unwrap().len()).sum()
    }
}

/// One accepted submission, as its driver knows it.
struct Submitted {
    /// Set by the task's closure: it started.
    called: Arc<AtomicBool>,
    /// What `wait` returned before the id was submitted again (`None` for the last one, whose
    /// truth is in the registry).
    ended: Option<TaskStatus>,
}

/// What one driver submitted, per id, in submission order.
type Book = HashMap<String, Vec<Submitted>>;

struct Shared {
    worker: Worker,
    /// Tasks accepted so far, over all drivers; the shutdown starts when it reaches `shutdown_at`.
    accepted: AtomicUsize,
    shutdown_at: usize,
}

/// A random body. `ctx` is there for `submit_with_context`.
async fn body(kind: u64, ctx: Option<TaskContext>) -> anyhow::Result<()> {
    match kind {
        0..=3 => Ok(()),
        4 => anyhow::bail!("no"),
        5 => panic!("{INTENDED}: observed"),
        6 => {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            Ok(())
        }
        7 => {
            // Until cancelled (or the shutdown).
            match ctx {
                Some(ctx) => ctx.cancelled().await,
                None => std::future::pending::<()>().await,
            }
            Ok(())
        }
        _ => {
            // Ignores its token a little longer than the cancel timeout: aborted when cancelled.
            tokio::time::sleep(Duration::from_millis(8)).await;
            Ok(())
        }
    }
}

async fn submit(shared: &Shared, id: &str, rng: &mut Rng) -> Result<Arc<AtomicBool>, SubmitError> {
    // Few that wait for their token or ignore it, so that live tasks stay few.
    let kind = match rng.below(100) {
        0..=1 => 7,
        2 => 8,
        n => n % 7,
    };
    let called = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&called);
    let panic_in_closure = kind == 5 && rng.chance(2);
    let result = if rng.chance(2) {
        shared
            .worker
            .submit_with_context(id, move |ctx| {
                flag.store(true, Ordering::SeqCst);
                if panic_in_closure {
                    panic!("{INTENDED}: in the closure");
                }
                body(kind, Some(ctx))
            })
            .await
    } else {
        shared
            .worker
            .submit(id, move || {
                flag.store(true, Ordering::SeqCst);
                body(kind, None)
            })
            .await
    };
    result.map(|()| called)
}

/// Submits `tasks` new ids, re-submits some finished ones, cancels some, until done or until
/// the worker refuses work. Returns its book. Driver 0 starts the shutdown.
async fn driver(shared: Arc<Shared>, index: usize, tasks: usize, seed: u64) -> Book {
    let mut rng = Rng::new(seed);
    let mut book = Book::new();
    let mut ids: Vec<String> = Vec::with_capacity(tasks);
    let mut cancels = Vec::new();
    let mut shut_down = None;
    for n in 0..tasks {
        if shared.accepted.load(Ordering::Relaxed) >= shared.shutdown_at && index == 0 && shut_down.is_none()
        {
            let worker = shared.worker.clone();
            shut_down = Some(tokio::spawn(async move { worker.shutdown().await }));
        }
        // Now and then the same id again, if its previous task is over.
        let mut again = None;
        if rng.chance(20) && !ids.is_empty() {
            let id = &ids[rng.below(ids.len() as u64) as usize];
            if shared
                .worker
                .get_task_status(id)
                .await
                .is_some_and(|status| status.is_terminal())
            {
                again = Some(id.clone());
            }
        }
        let (id, again) = match again {
            Some(id) => (id, true),
            None => (format!("d{index}-{n}"), false),
        };
        if again {
            let ended = shared.worker.wait(&id).await;
            let last = book
                .get_mut(&id)
                .and_then(|all| all.last_mut())
                .expect("a re-submitted id was submitted before");
            last.ended = Some(ended.expect("no cleanup, so the entry is still there"));
        }
        match submit(&shared, &id, &mut rng).await {
            Ok(called) => {
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                book.entry(id.clone())
                    .or_default()
                    .push(Submitted { called, ended: None });
                if !again {
                    ids.push(id);
                }
            }
            Err(SubmitError::ShuttingDown { .. }) => {
                if again {
                    // Not re-submitted after all: the last task's truth is the registry's.
                    book.get_mut(&id).and_then(|all| all.last_mut()).unwrap().ended = None;
                }
                break;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
        if rng.chance(8) && !ids.is_empty() {
            // Cancel a recent id (often still live), from a task of its own.
            let back = rng.below(16.min(ids.len() as u64)) as usize;
            let id = ids[ids.len() - 1 - back].clone();
            let worker = shared.worker.clone();
            cancels.push(tokio::spawn(async move {
                let _ = worker.cancel(&id).await;
            }));
        }
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for cancel in cancels {
        cancel.await.expect("cancel task");
    }
    if let Some(shut_down) = shut_down {
        shut_down.await.expect("shutdown task");
    }
    book
}

#[test]
fn every_transition_of_every_task_is_seen_once_in_order_under_load() {
    quiet_intended_panics();
    let total = if stress() { 1_000_000 } else { 100_000 };
    let runtime = multi_thread(2);
    let seen = Seen::new();
    let record = Arc::clone(&seen);
    let worker = Worker::builder()
        .cancel_timeout(Duration::from_millis(4))
        .shutdown_timeout(Duration::from_millis(50))
        .on_transition(move |t: &Transition<'_>| record.record(t))
        .build();
    let shared = Arc::new(Shared {
        worker: worker.clone(),
        accepted: AtomicUsize::new(0),
        shutdown_at: total,
    });

    let books: Vec<Book> = runtime.block_on(watchdog("observe stress", async {
        let mut drivers = Vec::new();
        for index in 0..DRIVERS {
            drivers.push(tokio::spawn(driver(
                Arc::clone(&shared),
                index,
                // More than their share, so that the shutdown comes after `total` tasks.
                total / DRIVERS + total / 10,
                0x0B5E_0000 + index as u64,
            )));
        }
        let mut books = Vec::new();
        for driver in drivers {
            books.push(driver.await.expect("driver panicked"));
        }
        // Driver 0 started the shutdown; every call gets the same drain.
        worker.shutdown().await;
        books
    }));

    let mut tasks = 0;
    let mut again = 0;
    let mut started = 0;
    let mut by_terminal = HashMap::<&'static str, usize>::new();
    for book in &books {
        for (id, submissions) in book {
            let mut seen_for_id = seen.take(id);
            // Per generation, in the order seen; generations in submission order.
            let mut sorted: Vec<u64> = seen_for_id.iter().map(|(generation, _)| *generation).collect();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                submissions.len(),
                "{id}: {} submissions, generations seen {sorted:?}",
                submissions.len()
            );
            let final_status = runtime
                .block_on(worker.get_task_status(id))
                .expect("no cleanup: every id is still tracked");
            for (k, (generation, submitted)) in sorted.iter().zip(submissions).enumerate() {
                let statuses: Vec<TaskStatus> = seen_for_id
                    .iter()
                    .filter(|(g, _)| g == generation)
                    .map(|(_, status)| status.clone())
                    .collect();
                let truth = submitted.ended.clone().unwrap_or_else(|| final_status.clone());
                let ran = submitted.called.load(Ordering::SeqCst);
                let valid = match (statuses.as_slice(), ran) {
                    ([TaskStatus::Pending, TaskStatus::Running, last], true)
                    | ([TaskStatus::Pending, last], false) => last.is_terminal() && *last == truth,
                    _ => false,
                };
                assert!(
                    valid,
                    "{id} submission {k} (generation {generation}): seen {statuses:?}, closure called: \
                     {ran}, ended {truth:?}"
                );
                tasks += 1;
                again += usize::from(k > 0);
                started += usize::from(ran);
                *by_terminal.entry(truth.name()).or_default() += 1;
            }
            // A later generation's transitions never come before an earlier one's end.
            seen_for_id.dedup_by_key(|(generation, _)| *generation);
            assert!(
                seen_for_id.windows(2).all(|pair| pair[0].0 < pair[1].0),
                "{id}: generations interleaved: {seen_for_id:?}"
            );
        }
    }
    assert_eq!(seen.left(), 0, "transitions of ids nobody submitted");
    assert_eq!(tasks, shared.accepted.load(Ordering::Relaxed));
    assert!(tasks >= total, "{tasks} tasks");
    eprintln!("{tasks} tasks checked ({again} re-submissions): {started} started, terminal {by_terminal:?}");
    for status in ["completed", "failed", "cancelled"] {
        assert!(
            by_terminal.get(status).copied().unwrap_or(0) > 0,
            "no {status} task"
        );
    }
}
