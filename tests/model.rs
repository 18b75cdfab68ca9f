//! Model-based property test (issue 6, item 1).
//!
//! Random sequences of operations (submit with bodies that succeed, fail, panic, sleep, ignore
//! cancellation or wind down slowly; duplicate submits; cancel; status; wait; cleanup; shutdown;
//! advancing the clock) run against a [`Worker`] on a current-thread runtime with paused time,
//! and against [`Model`], a plain discrete-event simulation of the semantics of issue 2. After
//! every step the worker's observable state must equal the model's: every status, `has_task`,
//! `task_count`, `running_task_count`, `is_shutting_down`, the number of closures called and of
//! bodies alive, the virtual clock, and every value an operation returned. Every case ends with
//! a shutdown and a cleanup, so each sequence also checks the drain (the invariants listed in
//! `src/registry.rs`).
//!
//! # Determinism
//!
//! Time only moves when the test sleeps (`Advance`) or when an operation waits (`cancel`,
//! `wait`, `shutdown`): the paused clock then jumps from timer to timer, running every task at
//! its instant, exactly as the model's event loop does. Between steps the test yields until
//! every ready task has run ([`settle`]).
//!
//! Bodies last whole seconds; the timeouts are whole seconds plus one millisecond, so a body
//! and a timeout almost never end at the same instant. They still can (an abort at `t + 2.001 s`
//! starts a pending task whose end carries the extra millisecond), and then the order of two
//! timers of the same instant decides. For `cancel` both orders give the same result (the task
//! is `Cancelled` either way), so the model needs no choice there. For `shutdown` the task's
//! line in the report is `Cancelled` if its body's timer ran first and `Aborted` otherwise: the
//! model accepts exactly those two outcomes for such a task, and only for it.
//!
//! # Running it longer
//!
//! `PROPTEST_CASES=N` sets the number of cases; `STRESS=1` runs 50,000. A failure shrinks to a
//! short sequence printed with the `Debug` of each operation, e.g.
//! `[Submit("a", ctx 3s ignore -> Ok), Cancel("a")]`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use background_worker::{
    CancelError, ShutdownReport, SubmitError, TaskContext, TaskOutcome, TaskStatus, Worker,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Operations

/// The ids in play: three real ones (so duplicates and re-submissions are frequent) and the
/// empty id, which must always be refused.
const IDS: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    Err,
    Panic,
    /// `std::panic::panic_any(42)`: a payload that is not a string.
    PanicAny,
    /// The closure itself panics, before any body exists.
    PanicInClosure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnCancel {
    /// Returns as soon as it is told (or, for `submit`, is dropped at its `.await`).
    Stop,
    /// Keeps sleeping until its work is done, whatever the token says.
    Ignore,
    /// Told to stop, it winds down for this many seconds, then returns.
    WindDown(u8),
}

/// What a task body does: works `secs` seconds (0: returns at its first poll), reacts to
/// cancellation as `on_cancel` says (only with `ctx`, i.e. `submit_with_context`), then ends as
/// `end` says.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Body {
    ctx: bool,
    secs: u8,
    on_cancel: OnCancel,
    end: End,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.ctx { "ctx" } else { "plain" };
        let on_cancel = match (self.ctx, self.on_cancel) {
            (false, _) | (true, OnCancel::Stop) => String::new(),
            (true, OnCancel::Ignore) => " ignore".to_owned(),
            (true, OnCancel::WindDown(secs)) => format!(" wind {secs}s"),
        };
        let end = match self.end {
            End::Ok => "Ok",
            End::Err => "Err",
            End::Panic => "Panic",
            End::PanicAny => "PanicAny",
            End::PanicInClosure => "PanicInClosure",
        };
        write!(f, "{kind} {}s{on_cancel} -> {end}", self.secs)
    }
}

impl Body {
    /// The status of a body that ends on its own.
    fn status(self) -> TaskStatus {
        match self.end {
            End::Ok => TaskStatus::Completed,
            End::Err => TaskStatus::Failed("task failed: root cause".into()),
            End::Panic => TaskStatus::Failed("panicked: model-panic in body".into()),
            End::PanicAny => TaskStatus::Failed("panicked: Box<dyn Any>".into()),
            End::PanicInClosure => TaskStatus::Failed("panicked: model-panic in closure".into()),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// `submit` or `submit_with_context`, depending on the body.
    Submit(&'static str, Body),
    Cancel(&'static str),
    Status(&'static str),
    Wait(&'static str),
    Cleanup,
    Shutdown,
    /// Sleep this many seconds.
    Advance(u8),
}

#[derive(Clone, Copy, Debug)]
struct Setup {
    max_concurrent: Option<usize>,
    /// `max_tracked`: with three ids, a bound of two makes `AtCapacity` reachable.
    max_tracked: Option<usize>,
    cancel_ms: u64,
    shutdown_ms: u64,
}

fn id_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => prop::sample::select(&IDS[..]),
        1 => Just(""),
    ]
}

fn body_strategy() -> impl Strategy<Value = Body> {
    let on_cancel = prop_oneof![
        Just(OnCancel::Stop),
        Just(OnCancel::Ignore),
        (0u8..=4).prop_map(OnCancel::WindDown),
    ];
    let end = prop_oneof![
        4 => Just(End::Ok),
        2 => Just(End::Err),
        1 => Just(End::Panic),
        1 => Just(End::PanicAny),
        1 => Just(End::PanicInClosure),
    ];
    (any::<bool>(), 0u8..=6, on_cancel, end).prop_map(|(ctx, secs, on_cancel, end)| {
        // Normalise, so that a shrunk case shows only what matters.
        let secs = if end == End::PanicInClosure { 0 } else { secs };
        let on_cancel = if ctx && secs > 0 {
            on_cancel
        } else {
            OnCancel::Stop
        };
        Body {
            ctx,
            secs,
            on_cancel,
            end,
        }
    })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (id_strategy(), body_strategy()).prop_map(|(id, body)| Op::Submit(id, body)),
        3 => id_strategy().prop_map(Op::Cancel),
        1 => id_strategy().prop_map(Op::Status),
        2 => id_strategy().prop_map(Op::Wait),
        1 => Just(Op::Cleanup),
        1 => Just(Op::Shutdown),
        4 => (1u8..=4).prop_map(Op::Advance),
    ]
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![Just(None), Just(Some(1)), Just(Some(2))],
        prop_oneof![3 => Just(None), 1 => Just(Some(2))],
        prop_oneof![Just(1_001u64), Just(2_001)],
        prop_oneof![Just(1_001u64), Just(3_001)],
    )
        .prop_map(|(max_concurrent, max_tracked, cancel_ms, shutdown_ms)| Setup {
            max_concurrent,
            max_tracked,
            cancel_ms,
            shutdown_ms,
        })
}

// ---------------------------------------------------------------------------------------------
// The reference model

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running { ends_at: u64 },
    Done(TaskStatus),
}

#[derive(Debug)]
struct Task {
    body: Body,
    state: State,
    /// Told to stop (by `cancel` or `shutdown`): whatever it returns, it is `Cancelled`.
    cancelled: bool,
    /// When it became `Done` (model ms), for the tracking cap's oldest-finished-first rule.
    done_at: u64,
}

/// What the model expects from a `shutdown`: each drained task with the outcomes allowed for it
/// (two only for a timer tie, see the module docs), and the drain's duration.
#[derive(Debug, Clone)]
struct ExpectedReport {
    tasks: Vec<(&'static str, Vec<TaskOutcome>)>,
    elapsed_ms: u64,
}

/// A discrete-event simulation of the worker's semantics (issue 2). Time is in milliseconds.
#[derive(Debug)]
struct Model {
    setup: Setup,
    now: u64,
    tasks: BTreeMap<&'static str, Task>,
    /// Pending tasks waiting for a permit, in submission order (the semaphore is fair).
    queue: VecDeque<&'static str>,
    closed: bool,
    /// Closures called so far.
    called: usize,
    /// The first shutdown's report, for every later `shutdown`.
    report: Option<ExpectedReport>,
}

impl Model {
    fn new(setup: Setup) -> Self {
        Self {
            setup,
            now: 0,
            tasks: BTreeMap::new(),
            queue: VecDeque::new(),
            closed: false,
            called: 0,
            report: None,
        }
    }

    fn status(&self, id: &str) -> Option<TaskStatus> {
        self.tasks.get(id).map(|task| match &task.state {
            State::Pending => TaskStatus::Pending,
            State::Running { .. } => TaskStatus::Running,
            State::Done(status) => status.clone(),
        })
    }

    fn running(&self) -> usize {
        self.tasks
            .values()
            .filter(|task| matches!(task.state, State::Running { .. }))
            .count()
    }

    fn has_permit(&self) -> bool {
        self.setup
            .max_concurrent
            .is_none_or(|limit| self.running() < limit)
    }

    fn start(&mut self, id: &'static str) {
        let now = self.now;
        let task = self.tasks.get_mut(id).expect("started task exists");
        task.state = State::Running {
            ends_at: now + 1_000 * u64::from(task.body.secs),
        };
        self.called += 1;
    }

    fn fill_permits(&mut self) {
        while self.has_permit() {
            let Some(id) = self.queue.pop_front() else { break };
            self.start(id);
        }
    }

    fn next_event(&self) -> Option<u64> {
        self.tasks
            .values()
            .filter_map(|task| match task.state {
                State::Running { ends_at } => Some(ends_at),
                _ => None,
            })
            .min()
    }

    /// Runs every event up to and including `target`, then sets the clock to it.
    fn run_until(&mut self, target: u64) {
        while let Some(next) = self.next_event().filter(|&next| next <= target) {
            self.now = self.now.max(next);
            for task in self.tasks.values_mut() {
                if matches!(task.state, State::Running { ends_at } if ends_at == next) {
                    let status = if task.cancelled {
                        TaskStatus::Cancelled
                    } else {
                        task.body.status()
                    };
                    task.state = State::Done(status);
                    task.done_at = next;
                }
            }
            self.fill_permits();
        }
        self.now = self.now.max(target);
    }

    /// When a running task that is told to stop now ends, if nobody aborts it.
    fn natural_end(&self, id: &str) -> u64 {
        let task = &self.tasks[id];
        let State::Running { ends_at } = task.state else {
            unreachable!("natural_end of a task that is not running")
        };
        match (task.body.ctx, task.body.on_cancel) {
            (false, _) | (true, OnCancel::Stop) => self.now,
            (true, OnCancel::Ignore) => ends_at,
            (true, OnCancel::WindDown(secs)) => self.now + 1_000 * u64::from(secs),
        }
    }

    fn submit(&mut self, id: &'static str, body: Body) -> Result<(), SubmitError> {
        self.submit_evicting(id, body, |_| true)
    }

    /// `submit`; at the tracking cap, the finished entry that finished first makes room. Among
    /// entries that finished at the same instant the order is the runtime's: `evicted` tells
    /// which one the worker removed (the model checks it is one of them).
    fn submit_evicting(
        &mut self,
        id: &'static str,
        body: Body,
        evicted: impl Fn(&str) -> bool,
    ) -> Result<(), SubmitError> {
        if id.is_empty() {
            return Err(SubmitError::InvalidId { id: id.into() });
        }
        if self.closed {
            return Err(SubmitError::ShuttingDown { id: id.into() });
        }
        match self.tasks.get(id) {
            Some(task) if !matches!(task.state, State::Done(_)) => {
                return Err(SubmitError::DuplicateId { id: id.into() });
            }
            // A finished entry is replaced: the number of entries does not change.
            Some(_) => {}
            None => {
                if let Some(limit) = self.setup.max_tracked.filter(|&limit| self.tasks.len() >= limit) {
                    let first = self
                        .tasks
                        .values()
                        .filter(|task| matches!(task.state, State::Done(_)))
                        .map(|task| task.done_at)
                        .min();
                    let Some(first) = first else {
                        return Err(SubmitError::AtCapacity { id: id.into(), limit });
                    };
                    let oldest: Vec<&'static str> = self
                        .tasks
                        .iter()
                        .filter(|(_, task)| matches!(task.state, State::Done(_)) && task.done_at == first)
                        .map(|(id, _)| *id)
                        .collect();
                    let gone = match oldest.iter().find(|old| evicted(old)) {
                        Some(gone) => *gone,
                        None => oldest[0],
                    };
                    self.tasks.remove(gone);
                }
            }
        }
        self.tasks.insert(
            id,
            Task {
                body,
                state: State::Pending,
                cancelled: false,
                done_at: 0,
            },
        );
        self.queue.push_back(id);
        self.fill_permits();
        self.run_until(self.now);
        Ok(())
    }

    fn cancel(&mut self, id: &'static str) -> Result<TaskStatus, CancelError> {
        let Some(task) = self.tasks.get_mut(id) else {
            return Err(CancelError::NotFound { id: id.into() });
        };
        match task.state.clone() {
            State::Done(status) => Ok(status),
            State::Pending => {
                task.state = State::Done(TaskStatus::Cancelled);
                task.done_at = self.now;
                self.queue.retain(|queued| *queued != id);
                Ok(TaskStatus::Cancelled)
            }
            State::Running { .. } => {
                let ends_at = self.natural_end(id).min(self.now + self.setup.cancel_ms);
                let task = self.tasks.get_mut(id).expect("present");
                task.cancelled = true;
                task.state = State::Running { ends_at };
                self.run_until(ends_at);
                Ok(self.status(id).expect("present"))
            }
        }
    }

    fn wait(&mut self, id: &'static str) -> Option<TaskStatus> {
        loop {
            let status = self.status(id)?;
            if status.is_terminal() {
                return Some(status);
            }
            let next = self.next_event().expect("model: a live task but nothing running");
            self.run_until(next);
        }
    }

    fn cleanup(&mut self) -> usize {
        let before = self.tasks.len();
        self.tasks.retain(|_, task| !matches!(task.state, State::Done(_)));
        before - self.tasks.len()
    }

    fn shutdown(&mut self) -> ExpectedReport {
        if let Some(report) = &self.report {
            return report.clone();
        }
        self.closed = true;
        let started = self.now;
        let deadline = started + self.setup.shutdown_ms;
        let mut tasks = Vec::new();
        let mut last = started;
        let ids: Vec<&'static str> = self.tasks.keys().copied().collect();
        for id in ids {
            let outcomes = match self.tasks[id].state {
                State::Done(_) => continue,
                State::Pending => {
                    self.tasks.get_mut(id).expect("present").state = State::Done(TaskStatus::Cancelled);
                    vec![TaskOutcome::Cancelled]
                }
                State::Running { .. } => {
                    let natural = self.natural_end(id);
                    let outcomes = match natural.cmp(&deadline) {
                        std::cmp::Ordering::Less => vec![TaskOutcome::Cancelled],
                        std::cmp::Ordering::Greater => vec![TaskOutcome::Aborted],
                        std::cmp::Ordering::Equal => vec![TaskOutcome::Cancelled, TaskOutcome::Aborted],
                    };
                    let ends_at = natural.min(deadline);
                    last = last.max(ends_at);
                    let task = self.tasks.get_mut(id).expect("present");
                    task.cancelled = true;
                    task.state = State::Running { ends_at };
                    outcomes
                }
            };
            tasks.push((id, outcomes));
        }
        self.queue.clear();
        self.run_until(last);
        let report = ExpectedReport {
            tasks,
            elapsed_ms: self.now - started,
        };
        self.report = Some(report.clone());
        report
    }
}

// ---------------------------------------------------------------------------------------------
// The real bodies

/// Counts closures called and bodies alive (a body is alive from its closure call until its
/// future is dropped, whether it finished or was aborted).
#[derive(Debug, Default)]
struct Probe {
    called: AtomicUsize,
    alive: AtomicUsize,
}

struct Alive(Arc<Probe>);

impl Probe {
    fn enter(self: &Arc<Self>) -> Alive {
        self.called.fetch_add(1, Ordering::SeqCst);
        self.alive.fetch_add(1, Ordering::SeqCst);
        Alive(Arc::clone(self))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn body_future(body: Body, ctx: Option<TaskContext>, alive: Alive) -> anyhow::Result<()> {
    let _alive = alive;
    let work = tokio::time::sleep(Duration::from_secs(body.secs.into()));
    if body.secs > 0 {
        match (ctx, body.on_cancel) {
            (Some(ctx), OnCancel::Stop) => tokio::select! {
                () = ctx.cancelled() => {}
                () = work => {}
            },
            (Some(ctx), OnCancel::WindDown(secs)) => tokio::select! {
                () = ctx.cancelled() => tokio::time::sleep(Duration::from_secs(secs.into())).await,
                () = work => {}
            },
            _ => work.await,
        }
    }
    match body.end {
        End::Ok => Ok(()),
        End::Err => Err(anyhow::anyhow!("root cause").context("task failed")),
        End::Panic => panic!("model-panic in body"),
        End::PanicAny => std::panic::panic_any(42_i32),
        End::PanicInClosure => unreachable!("normalised away"),
    }
}

async fn submit(worker: &Worker, probe: &Arc<Probe>, id: &str, body: Body) -> Result<(), SubmitError> {
    let probe = Arc::clone(probe);
    if body.ctx {
        worker
            .submit_with_context(id, move |ctx| {
                let alive = probe.enter();
                if body.end == End::PanicInClosure {
                    panic!("model-panic in closure");
                }
                body_future(body, Some(ctx), alive)
            })
            .await
    } else {
        worker
            .submit(id, move || {
                let alive = probe.enter();
                if body.end == End::PanicInClosure {
                    panic!("model-panic in closure");
                }
                body_future(body, None, alive)
            })
            .await
    }
}

/// Silences the panics the bodies raise on purpose; any other panic is reported as usual.
fn quiet_intended_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let intended = payload.downcast_ref::<i32>() == Some(&42)
                || payload
                    .downcast_ref::<&str>()
                    .is_some_and(|m| m.starts_with("model-panic"));
            if !intended {
                default(info);
            }
        }));
    });
}

/// Lets every ready task run (the clock does not move: the driver is never idle).
async fn settle() {
    for _ in 0..40 {
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Running a case

/// Virtual time after which an operation counts as hung (the paused clock jumps there at once).
const HUNG: Duration = Duration::from_secs(3_600);

macro_rules! check_eq {
    ($step:expr, $what:expr, $real:expr, $model:expr) => {{
        let (real, model) = (&$real, &$model);
        if real != model {
            return Err(TestCaseError::fail(format!(
                "step {}: {}: worker gave {:?}, model expects {:?}",
                $step, $what, real, model
            )));
        }
    }};
}

async fn hung<T>(step: &str, future: impl std::future::Future<Output = T>) -> Result<T, TestCaseError> {
    tokio::time::timeout(HUNG, future)
        .await
        .map_err(|_| TestCaseError::fail(format!("step {step}: hung for an hour of virtual time")))
}

fn check_report(step: &str, real: &ShutdownReport, model: &ExpectedReport) -> Result<(), TestCaseError> {
    let ids: Vec<&str> = real.tasks().iter().map(|task| task.id.as_str()).collect();
    let expected_ids: Vec<&str> = model.tasks.iter().map(|(id, _)| *id).collect();
    check_eq!(step, "report ids", ids, expected_ids);
    for (task, (id, allowed)) in real.tasks().iter().zip(&model.tasks) {
        if !allowed.contains(&task.outcome) {
            return Err(TestCaseError::fail(format!(
                "step {step}: report outcome of {id:?}: worker gave {:?}, model allows {allowed:?}",
                task.outcome
            )));
        }
    }
    check_eq!(
        step,
        "report elapsed",
        real.elapsed(),
        Duration::from_millis(model.elapsed_ms)
    );
    Ok(())
}

async fn check_state(
    step: &str,
    worker: &Worker,
    probe: &Probe,
    model: &Model,
    origin: Instant,
) -> Result<(), TestCaseError> {
    for id in IDS {
        check_eq!(
            step,
            format!("status of {id:?}"),
            worker.get_task_status(id).await,
            model.status(id)
        );
        check_eq!(
            step,
            format!("has_task({id:?})"),
            worker.has_task(id),
            model.tasks.contains_key(id)
        );
    }
    check_eq!(
        step,
        "get_task_status(\"\")",
        worker.get_task_status("").await,
        None
    );
    check_eq!(step, "task_count", worker.task_count(), model.tasks.len());
    check_eq!(
        step,
        "running_task_count",
        worker.running_task_count().await,
        model.running()
    );
    check_eq!(step, "is_shutting_down", worker.is_shutting_down(), model.closed);
    check_eq!(
        step,
        "closures called",
        probe.called.load(Ordering::SeqCst),
        model.called
    );
    check_eq!(
        step,
        "bodies alive",
        probe.alive.load(Ordering::SeqCst),
        model.running()
    );
    check_eq!(
        step,
        "virtual clock",
        origin.elapsed(),
        Duration::from_millis(model.now)
    );
    Ok(())
}

async fn run_case(setup: Setup, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut builder = Worker::builder()
        .cancel_timeout(Duration::from_millis(setup.cancel_ms))
        .shutdown_timeout(Duration::from_millis(setup.shutdown_ms));
    if let Some(limit) = setup.max_concurrent {
        builder = builder.max_concurrent(limit);
    }
    if let Some(limit) = setup.max_tracked {
        builder = builder.max_tracked(limit);
    }
    let worker = builder.build();
    let probe = Arc::new(Probe::default());
    let mut model = Model::new(setup);
    let mut first_report: Option<ShutdownReport> = None;
    let origin = Instant::now();

    // Every case ends with a shutdown and a cleanup: the drain is checked every time.
    let ops = ops.into_iter().chain([Op::Shutdown, Op::Cleanup]);
    for (index, op) in ops.enumerate() {
        let step = format!("{index} ({op:?})");
        match op {
            Op::Submit(id, body) => {
                let real = hung(&step, submit(&worker, &probe, id, body)).await?;
                let expected = model.submit_evicting(id, body, |old| !worker.has_task(old));
                check_eq!(step, "submit", real, expected);
            }
            Op::Cancel(id) => {
                let real = hung(&step, worker.cancel(id)).await?;
                check_eq!(step, "cancel", real, model.cancel(id));
            }
            Op::Status(id) => {
                check_eq!(
                    step,
                    "get_task_status",
                    worker.get_task_status(id).await,
                    model.status(id)
                );
            }
            Op::Wait(id) => {
                let real = hung(&step, worker.wait(id)).await?;
                check_eq!(step, "wait", real, model.wait(id));
            }
            Op::Cleanup => {
                let real = worker.cleanup_finished_tasks().await;
                check_eq!(step, "cleanup_finished_tasks", real, model.cleanup());
            }
            Op::Shutdown => {
                let real = hung(&step, worker.shutdown()).await?;
                let expected = model.shutdown();
                match &first_report {
                    None => {
                        check_report(&step, &real, &expected)?;
                        first_report = Some(real);
                    }
                    Some(first) => check_eq!(step, "second shutdown's report", &real, first),
                }
            }
            Op::Advance(secs) => {
                tokio::time::sleep(Duration::from_secs(secs.into())).await;
                model.run_until(model.now + 1_000 * u64::from(secs));
            }
        }
        settle().await;
        check_state(&step, &worker, &probe, &model, origin).await?;
    }
    // After shutdown and cleanup: nothing tracked, nothing alive.
    check_eq!(
        "end",
        "task_count after shutdown + cleanup",
        worker.task_count(),
        0
    );
    check_eq!(
        "end",
        "bodies alive after shutdown",
        probe.alive.load(Ordering::SeqCst),
        0
    );
    Ok(())
}

fn cases() -> u32 {
    if let Some(cases) = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()) {
        return cases;
    }
    if std::env::var_os("STRESS").is_some_and(|v| !v.is_empty() && v != "0") {
        50_000
    } else {
        3_000
    }
}

#[test]
fn worker_matches_the_model() {
    quiet_intended_panics();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (setup_strategy(), prop::collection::vec(op_strategy(), 1..40));
    let result = runner.run(&strategy, |(setup, ops)| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        runtime.block_on(run_case(setup, ops))
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// The model itself, on a hand-checked sequence: a pending task behind a limit of one starts
/// when the first task is aborted by `cancel`, and its end carries the timeout's extra
/// millisecond.
#[test]
fn model_sanity() {
    let setup = Setup {
        max_concurrent: Some(1),
        max_tracked: None,
        cancel_ms: 2_001,
        shutdown_ms: 1_001,
    };
    let ignore = Body {
        ctx: true,
        secs: 6,
        on_cancel: OnCancel::Ignore,
        end: End::Ok,
    };
    let quick = Body {
        ctx: false,
        secs: 1,
        on_cancel: OnCancel::Stop,
        end: End::Err,
    };
    let mut model = Model::new(setup);
    assert_eq!(model.submit("a", ignore), Ok(()));
    assert_eq!(model.submit("b", quick), Ok(()));
    assert_eq!(model.status("b"), Some(TaskStatus::Pending));
    assert_eq!(model.cancel("a"), Ok(TaskStatus::Cancelled));
    assert_eq!(model.now, 2_001);
    assert_eq!(model.status("b"), Some(TaskStatus::Running));
    assert_eq!(
        model.wait("b"),
        Some(TaskStatus::Failed("task failed: root cause".into()))
    );
    assert_eq!(model.now, 3_001);
    assert_eq!(model.submit("b", quick), Ok(()));
    assert_eq!(model.shutdown().tasks, vec![("b", vec![TaskOutcome::Cancelled])]);
    assert_eq!(model.cleanup(), 2);
}
