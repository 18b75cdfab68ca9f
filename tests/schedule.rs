//! Schedules on one worker, in paused time: cadences, policies (overlap, missed ticks, jitter,
//! timeout), pause/resume/remove, visibility, shutdown, and a property test of the period
//! cadence against a model.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use background_worker::{Missed, Overlap, Schedule, ScheduleError, TaskOutcome, TaskStatus, Tick, Worker};
use common::{secs, settle, sleep_secs, within};
use proptest::prelude::*;
use tokio::time::Instant;

/// The ticks (ms since the epoch) of the tracked runs of `name`, oldest first.
fn ticks(worker: &Worker, name: &str) -> Vec<u64> {
    let mut ticks: Vec<u64> = worker
        .schedule_runs(name)
        .iter()
        .map(|run| Tick::from_run_id(&run.id).expect("a run id").scheduled_at_ms())
        .collect();
    ticks.reverse();
    ticks
}

/// Waits (paused time, in 5 ms steps, at most two minutes) for the first run of `name` to
/// start, and returns its tick: the clock is then within 5 ms after that tick.
async fn first_run(worker: &Worker, name: &str) -> u64 {
    let waited = within(120, async {
        loop {
            if let Some(tick) = ticks(worker, name).first() {
                return *tick;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    waited.await
}

fn ok_body(
) -> impl Fn(background_worker::TaskContext, Tick) -> std::future::Ready<anyhow::Result<()>> + Send + Sync + 'static
{
    |_ctx, _tick| std::future::ready(Ok(()))
}

#[tokio::test(start_paused = true)]
async fn a_period_ticks_on_the_multiples_of_the_period_since_the_epoch() {
    let worker = Worker::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    worker
        .schedule("every-10s", Schedule::every(secs(10)), move |ctx, tick| {
            record.lock().unwrap().push((ctx.id().to_owned(), tick.clone()));
            async { Ok(()) }
        })
        .unwrap();
    sleep_secs(35).await;

    let ticks = ticks(&worker, "every-10s");
    assert!((3..=4).contains(&ticks.len()), "{ticks:?}");
    assert!(ticks.iter().all(|tick| tick % 10_000 == 0), "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1] - w[0] == 10_000), "{ticks:?}");
    // The body saw its own tick, and its task id is made from it.
    for (id, tick) in seen.lock().unwrap().iter() {
        assert_eq!(tick.schedule(), "every-10s");
        assert_eq!(id, &format!("every-10s@{}", tick.scheduled_at_ms()));
        assert_eq!(id, &tick.run_id());
    }
    assert!(worker
        .schedule_runs("every-10s")
        .iter()
        .all(|run| run.status == TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn an_offset_shifts_the_ticks() {
    let worker = Worker::new();
    let schedule = Schedule::every(secs(10)).offset(Duration::from_millis(3_250));
    worker.schedule("shifted", schedule, ok_body()).unwrap();
    first_run(&worker, "shifted").await;
    sleep_secs(35).await;
    let ticks = ticks(&worker, "shifted");
    assert_eq!(ticks.len(), 4, "{ticks:?}");
    assert!(ticks.iter().all(|tick| tick % 10_000 == 3_250), "{ticks:?}");
}

#[tokio::test(start_paused = true)]
async fn runs_are_listed_newest_first_and_only_for_their_schedule() {
    let worker = Worker::new();
    worker.schedule("a", Schedule::every(secs(1)), ok_body()).unwrap();
    worker
        .schedule("ab", Schedule::every(secs(1)), ok_body())
        .unwrap();
    worker.submit("a@not-a-tick", || async { Ok(()) }).await.unwrap();
    sleep_secs(5).await;
    let runs = worker.schedule_runs("a");
    assert!(runs.len() >= 4);
    assert!(runs
        .iter()
        .all(|run| run.id.starts_with("a@") && run.id != "a@not-a-tick"));
    let ticks: Vec<u64> = runs
        .iter()
        .map(|run| Tick::from_run_id(&run.id).unwrap().scheduled_at_ms())
        .collect();
    assert!(ticks.windows(2).all(|w| w[0] > w[1]), "newest first: {ticks:?}");
    assert!(worker.schedule_runs("nope").is_empty());
}

/// Records when each run of a body started and ended (tokio time), to check overlaps.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Span>>>);

/// A run's start, and its end once it ended.
type Span = (Instant, Option<Instant>);

impl Spans {
    fn start(&self) -> usize {
        let mut spans = self.0.lock().unwrap();
        spans.push((Instant::now(), None));
        spans.len() - 1
    }
    fn end(&self, index: usize) {
        self.0.lock().unwrap()[index].1 = Some(Instant::now());
    }
    fn overlapping(&self) -> usize {
        let spans = self.0.lock().unwrap();
        let mut overlaps = 0;
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                let a_end = a.1.unwrap_or(Instant::now() + secs(1_000_000));
                if b.0 < a_end {
                    overlaps += 1;
                }
            }
        }
        overlaps
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn slow_body(
    spans: &Spans,
    run_for: u64,
) -> impl Fn(background_worker::TaskContext, Tick) -> futures_like::Body + Send + Sync + 'static {
    let spans = spans.clone();
    move |_ctx, _tick| {
        let spans = spans.clone();
        Box::pin(async move {
            let index = spans.start();
            sleep_secs(run_for).await;
            spans.end(index);
            Ok(())
        })
    }
}

mod futures_like {
    pub(crate) type Body = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;
}

#[tokio::test(start_paused = true)]
async fn overlap_skip_runs_one_at_a_time_and_counts_the_skipped_ticks() {
    let worker = Worker::new();
    let spans = Spans::default();
    // Each run takes 25 s; ticks every 10 s.
    worker
        .schedule("slow", Schedule::every(secs(10)), slow_body(&spans, 25))
        .unwrap();
    sleep_secs(95).await;
    assert_eq!(spans.overlapping(), 0);
    let info = worker.schedule_info("slow").unwrap();
    assert!(info.runs >= 3, "{info:?}");
    assert!(
        info.skipped >= 2 * (info.runs - 1),
        "two ticks skipped per run: {info:?}"
    );
    assert_eq!(info.runs as usize, spans.len());
}

#[tokio::test(start_paused = true)]
async fn overlap_allow_runs_every_tick() {
    let worker = Worker::new();
    let spans = Spans::default();
    let schedule = Schedule::every(secs(10)).overlap(Overlap::Allow);
    worker.schedule("slow", schedule, slow_body(&spans, 25)).unwrap();
    sleep_secs(95).await;
    let info = worker.schedule_info("slow").unwrap();
    assert_eq!(info.skipped, 0);
    assert!(info.runs >= 9, "{info:?}");
    assert!(spans.overlapping() > 0);
    // Up to three runs live at a time: 25 s runs, a tick every 10 s.
    assert!(worker.running_task_count().await <= 3);
}

#[tokio::test(start_paused = true)]
async fn after_a_pause_the_latest_missed_tick_runs_once_by_default() {
    let worker = Worker::new();
    worker
        .schedule("sync", Schedule::every(secs(10)), ok_body())
        .unwrap();
    first_run(&worker, "sync").await;
    sleep_secs(15).await;
    let before = ticks(&worker, "sync");
    assert_eq!(before.len(), 2);

    assert!(worker.pause_schedule("sync"));
    assert!(worker.pause_schedule("sync"), "pausing twice is fine");
    let info = worker.schedule_info("sync").unwrap();
    assert!(info.paused);
    assert_eq!(info.next_run, None);
    sleep_secs(100).await; // ten ticks fall during the pause
    assert_eq!(ticks(&worker, "sync"), before);

    assert!(worker.resume_schedule("sync"));
    settle().await;
    let after = ticks(&worker, "sync");
    assert_eq!(after.len(), 3, "one catch-up run: {after:?}");
    // The latest tick at or before now: 125 s after the start, 120 s after the first one... it
    // is 10 ticks after the last one before the pause.
    assert_eq!(after[2] - before[1], 100_000);
    sleep_secs(10).await;
    let later = ticks(&worker, "sync");
    assert_eq!(later.len(), 4);
    assert_eq!(later[3] - later[2], 10_000, "then on the period again");
}

#[tokio::test(start_paused = true)]
async fn after_a_pause_missed_skip_waits_for_the_next_tick() {
    let worker = Worker::new();
    let schedule = Schedule::every(secs(10)).missed(Missed::Skip);
    worker.schedule("sync", schedule, ok_body()).unwrap();
    first_run(&worker, "sync").await;
    sleep_secs(5).await;
    assert_eq!(ticks(&worker, "sync").len(), 1);
    worker.pause_schedule("sync");
    sleep_secs(100).await;
    worker.resume_schedule("sync");
    settle().await;
    assert_eq!(ticks(&worker, "sync").len(), 1, "no catch-up run");
    sleep_secs(10).await;
    let ticks = ticks(&worker, "sync");
    assert_eq!(ticks.len(), 2);
    assert_eq!(ticks[1] - ticks[0], 110_000, "the first tick after the resume");
}

#[tokio::test(start_paused = true)]
async fn one_tick_during_a_short_pause_is_missed_too() {
    for (missed, expected_runs) in [(Missed::RunLatest, 2), (Missed::Skip, 1)] {
        let worker = Worker::new();
        let schedule = Schedule::every(secs(10)).missed(missed);
        worker.schedule("sync", schedule, ok_body()).unwrap();
        let first = first_run(&worker, "sync").await;
        sleep_secs(5).await;
        worker.pause_schedule("sync");
        sleep_secs(10).await; // one tick falls during the pause
        worker.resume_schedule("sync");
        settle().await;
        let seen = ticks(&worker, "sync");
        assert_eq!(seen.len(), expected_runs, "{missed:?}: {seen:?}");
        sleep_secs(10).await;
        let next = *ticks(&worker, "sync").last().unwrap();
        assert_eq!(next, first + 20_000, "{missed:?}: then the next tick");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_clock_is_a_missed_tick_too() {
    for (missed, expected_runs) in [(Missed::RunLatest, 2), (Missed::Skip, 1)] {
        let worker = Worker::new();
        let schedule = Schedule::every(secs(10)).missed(missed);
        worker.schedule("sync", schedule, ok_body()).unwrap();
        first_run(&worker, "sync").await;
        sleep_secs(5).await;
        assert_eq!(ticks(&worker, "sync").len(), 1);
        // Jump 55 s at once, as after a suspended machine or a blocked runtime.
        tokio::time::advance(secs(55)).await;
        settle().await;
        let ticks = ticks(&worker, "sync");
        assert_eq!(ticks.len(), expected_runs, "{missed:?}: {ticks:?}");
        if missed == Missed::RunLatest {
            assert_eq!(ticks[1] - ticks[0], 60_000, "the latest missed tick");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_tick_is_not_missed() {
    // A jump shorter than one period: the tick is late, and runs under either policy.
    let worker = Worker::new();
    let schedule = Schedule::every(secs(10)).missed(Missed::Skip);
    worker.schedule("sync", schedule, ok_body()).unwrap();
    first_run(&worker, "sync").await;
    sleep_secs(5).await;
    tokio::time::advance(secs(9)).await;
    settle().await;
    assert_eq!(ticks(&worker, "sync").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_run_within_its_bound_by_the_same_amount_for_the_same_tick() {
    // Two workers (think: two replicas) with the same schedule, side by side.
    let mut workers = Vec::new();
    let mut records = Vec::new();
    for _ in 0..2 {
        let worker = Worker::new();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&starts);
        let schedule = Schedule::every(secs(60)).jitter(secs(20));
        worker
            .schedule("spread", schedule, move |_ctx, tick| {
                record
                    .lock()
                    .unwrap()
                    .push((tick.scheduled_at_ms(), Instant::now()));
                async { Ok(()) }
            })
            .unwrap();
        workers.push(worker);
        records.push(starts);
    }
    sleep_secs(60 * 20).await;
    let a = records[0].lock().unwrap().clone();
    let b = records[1].lock().unwrap().clone();
    assert!(a.len() >= 19, "{}", a.len());

    // Tick k starts at its own time plus its jitter: the start minus the tick's time, relative
    // to the first run's, is the jitter up to a constant.
    let (tick0, start0) = a[0];
    let offsets: Vec<i128> = a
        .iter()
        .map(|(tick, start)| start.duration_since(start0).as_millis() as i128 - i128::from(tick - tick0))
        .collect();
    let lowest = *offsets.iter().min().unwrap();
    let spread: Vec<i128> = offsets.iter().map(|o| o - lowest).collect();
    assert!(spread.iter().all(|&d| d <= 20_000), "{spread:?}");
    assert!(
        spread.iter().filter(|&&d| d > 1_000).count() > 5,
        "spread out: {spread:?}"
    );

    // The same tick started at the same time on both.
    let mut shared = 0;
    for (tick, start) in &a {
        if let Some((_, other)) = b.iter().find(|(t, _)| t == tick) {
            let apart = if start > other {
                *start - *other
            } else {
                *other - *start
            };
            assert!(apart <= Duration::from_millis(2), "tick {tick}: {apart:?} apart");
            shared += 1;
        }
    }
    assert!(shared >= 19, "{shared}");
}

#[tokio::test(start_paused = true)]
async fn a_run_over_its_timeout_fails() {
    let worker = Worker::new();
    let schedule = Schedule::every(secs(60)).timeout(secs(10));
    let finished = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&finished);
    worker
        .schedule("stuck", schedule, move |_ctx, _tick| {
            let count = Arc::clone(&count);
            async move {
                sleep_secs(30).await;
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .unwrap();
    first_run(&worker, "stuck").await;
    let run = &worker.schedule_runs("stuck")[0];
    assert_eq!(run.status, TaskStatus::Running);
    sleep_secs(10).await;
    let status = worker.wait(&run.id).await.unwrap();
    assert_eq!(status, TaskStatus::Failed("timed out after 10s".into()));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the body was dropped at the timeout"
    );
    assert_eq!(worker.task_info(&run.id).unwrap().run_time, Some(secs(10)));

    // A run within its timeout completes.
    let quick = Schedule::every(secs(60)).timeout(secs(10));
    worker
        .schedule("quick", quick, |_ctx, _tick| async {
            sleep_secs(5).await;
            Ok(())
        })
        .unwrap();
    first_run(&worker, "quick").await;
    sleep_secs(6).await;
    let run = &worker.schedule_runs("quick")[0];
    assert_eq!(run.status, TaskStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_tick_drains_the_run_and_stops_the_schedules() {
    let worker = Worker::builder().shutdown_timeout(secs(5)).build();
    worker
        .schedule("long", Schedule::every(secs(10)), |ctx, _tick| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .unwrap();
    sleep_secs(11).await;
    let run = worker.schedule_runs("long")[0].id.clone();
    assert_eq!(worker.get_task_status(&run).await, Some(TaskStatus::Running));

    let report = within(10, worker.shutdown()).await;
    assert_eq!(report.outcome(&run), Some(&TaskOutcome::Cancelled));
    let tracked = worker.task_count();
    sleep_secs(100).await;
    assert_eq!(worker.task_count(), tracked, "no tick after shutdown");
    assert!(worker.schedules().is_empty());
    assert_eq!(
        worker.schedule("late", Schedule::every(secs(1)), ok_body()),
        Err(ScheduleError::ShuttingDown { name: "late".into() })
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_can_be_cancelled_and_a_failing_run_does_not_stop_the_schedule() {
    let worker = Worker::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    let schedule = Schedule::every(secs(10)).overlap(Overlap::Allow);
    worker
        .schedule("flaky", schedule, move |ctx, _tick| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("first run panics"),
                    1 => anyhow::bail!("second run fails"),
                    _ => {
                        ctx.cancelled().await;
                        Ok(())
                    }
                }
            }
        })
        .unwrap();
    first_run(&worker, "flaky").await;
    sleep_secs(25).await;
    let runs = worker.schedule_runs("flaky");
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs[2].status,
        TaskStatus::Failed("panicked: first run panics".into())
    );
    assert_eq!(runs[1].status, TaskStatus::Failed("second run fails".into()));
    assert_eq!(worker.cancel(&runs[0].id).await, Ok(TaskStatus::Cancelled));
    sleep_secs(10).await;
    assert_eq!(worker.schedule_runs("flaky").len(), 4);
}

#[tokio::test(start_paused = true)]
async fn remove_stops_the_ticks_and_frees_the_name() {
    let worker = Worker::new();
    worker
        .schedule("s", Schedule::every(secs(10)), ok_body())
        .unwrap();
    first_run(&worker, "s").await;
    sleep_secs(15).await;
    assert!(worker.has_schedule("s"));
    assert!(worker.remove_schedule("s"));
    assert!(!worker.remove_schedule("s"));
    assert!(!worker.has_schedule("s"));
    sleep_secs(50).await;
    assert_eq!(
        ticks(&worker, "s").len(),
        2,
        "no tick after remove, the runs stay listed"
    );
    assert!(worker.schedule_info("s").is_none());

    worker
        .schedule("s", Schedule::every(secs(10)), ok_body())
        .unwrap();
    sleep_secs(10).await;
    assert_eq!(ticks(&worker, "s").len(), 3);
    assert!(!worker.pause_schedule("nope"));
    assert!(!worker.resume_schedule("nope"));
}

#[tokio::test(start_paused = true)]
async fn bad_names_periods_and_duplicates_are_typed_errors() {
    let worker = Worker::new();
    let every = || Schedule::every(secs(1));
    for (name, reason) in [("", "empty"), ("a@b", "'@'"), ("line\nbreak", "control")] {
        match worker.schedule(name, every(), ok_body()) {
            Err(ScheduleError::InvalidName {
                name: refused,
                reason: why,
            }) => {
                assert_eq!(refused, name);
                assert!(why.contains(reason), "{why}");
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
    let long = "x".repeat(background_worker::MAX_SCHEDULE_NAME + 1);
    assert!(matches!(
        worker.schedule(long, every(), ok_body()),
        Err(ScheduleError::InvalidName { .. })
    ));
    let max = "x".repeat(background_worker::MAX_SCHEDULE_NAME);
    worker.schedule(max, every(), ok_body()).unwrap();

    assert_eq!(
        worker.schedule("fast", Schedule::every(Duration::from_micros(900)), ok_body()),
        Err(ScheduleError::InvalidPeriod {
            name: "fast".into(),
            period: Duration::from_micros(900)
        })
    );
    worker.schedule("once", every(), ok_body()).unwrap();
    let duplicate = worker.schedule("once", every(), ok_body()).unwrap_err();
    assert_eq!(duplicate, ScheduleError::DuplicateName { name: "once".into() });
    assert_eq!(duplicate.name(), "once");
    assert_eq!(duplicate.to_string(), "a schedule named \"once\" already exists");
    assert_eq!(worker.schedule_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn schedules_show_their_next_tick_and_last_run_in_health_too() {
    let worker = Worker::new();
    worker
        .schedule("slow", Schedule::every(secs(60)), |_ctx, _tick| async {
            sleep_secs(30).await;
            Ok(())
        })
        .unwrap();
    worker
        .schedule("idle", Schedule::every(secs(3600)), ok_body())
        .unwrap();
    let info = worker.schedule_info("slow").unwrap();
    assert_eq!(info.last_run, None);
    let first = info.next_run.unwrap();

    first_run(&worker, "slow").await;
    sleep_secs(1).await;
    let info = worker.schedule_info("slow").unwrap();
    let last = info.last_run.clone().unwrap();
    assert_eq!(last.scheduled_at, first);
    assert_eq!(last.status, Some(TaskStatus::Running));
    assert_eq!(Tick::from_run_id(&last.id).unwrap().scheduled_at(), first);
    assert_eq!(info.next_run, Some(first + secs(60)));
    assert_eq!(info.runs, 1);

    let health = worker.health();
    let names: Vec<&str> = health.schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["idle", "slow"]);
    assert_eq!(health.schedules[1], info);
    assert_eq!(worker.schedules(), health.schedules);

    sleep_secs(30).await;
    let last = worker.schedule_info("slow").unwrap().last_run.unwrap();
    assert_eq!(last.status, Some(TaskStatus::Completed));
    worker.cleanup_finished_tasks().await;
    let last = worker.schedule_info("slow").unwrap().last_run.unwrap();
    assert_eq!(last.status, None, "a run no longer tracked has no status");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_stops_the_schedules_and_drops_their_bodies() {
    let worker = Worker::new();
    let captured = Arc::new(());
    let held = Arc::clone(&captured);
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    worker
        .schedule("s", Schedule::every(secs(10)), move |_ctx, _tick| {
            let _held = &held;
            count.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .unwrap();
    first_run(&worker, "s").await;
    sleep_secs(15).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    drop(worker);
    settle().await;
    assert_eq!(Arc::strong_count(&captured), 1, "the body factory was dropped");
    sleep_secs(100).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn runs_wait_for_a_permit_like_any_task() {
    let worker = Worker::builder().max_concurrent(1).build();
    worker
        .schedule("s", Schedule::every(secs(10)), ok_body())
        .unwrap();
    first_run(&worker, "s").await;
    settle().await;
    worker
        .submit("hog", || async {
            sleep_secs(25).await;
            Ok(())
        })
        .await
        .unwrap();
    sleep_secs(11).await;
    let runs = worker.schedule_runs("s");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, TaskStatus::Pending, "waits for the hog's permit");
    // The next tick is skipped (the previous run is still pending); the hog ends, the run goes.
    sleep_secs(20).await;
    let runs = worker.schedule_runs("s");
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|run| run.status == TaskStatus::Completed));
    assert_eq!(worker.schedule_info("s").unwrap().skipped, 1);
}

/// One step of the model test: let time run (timers fire on time) or jump it at once (a stall).
#[derive(Debug, Clone)]
enum Step {
    Sleep(u64),
    Jump(u64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![(1u64..40).prop_map(Step::Sleep), (1u64..40).prop_map(Step::Jump)],
        1..12,
    )
}

/// The runs the model expects for a period of `period` s, from the wall time `now` (ms, half a
/// second off the ticks) through `steps`.
fn model(period: u64, now: u64, missed: Missed, steps: &[Step]) -> Vec<u64> {
    let period = period * 1000;
    let mut now = now;
    let mut runs = Vec::new();
    for step in steps {
        let (seconds, jump) = match step {
            Step::Sleep(s) => (*s, false),
            Step::Jump(s) => (*s, true),
        };
        let end = now + seconds * 1000;
        let ticks: Vec<u64> = (now / period + 1..=end / period).map(|k| k * period).collect();
        if !jump || ticks.len() == 1 {
            runs.extend(ticks);
        } else if missed == Missed::RunLatest {
            runs.extend(ticks.last());
        }
        now = end;
    }
    runs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Against a model: a period schedule runs exactly the ticks that fall while time runs, and
    /// after a jump over several ticks, the latest of them (RunLatest) or none (Skip).
    #[test]
    fn the_period_cadence_matches_the_model(period in 1u64..15, run_latest in any::<bool>(), steps in steps()) {
        let missed = if run_latest { Missed::RunLatest } else { Missed::Skip };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let (seen, expected) = runtime.block_on(async {
            let worker = Worker::new();
            let schedule = Schedule::every(secs(period)).missed(missed).overlap(Overlap::Allow);
            worker.schedule("model", schedule, ok_body()).unwrap();
            // The first run tells where the ticks are; then step half a second off the ticks.
            let first = first_run(&worker, "model").await;
            tokio::time::sleep(Duration::from_millis(495)).await;
            assert_eq!(ticks(&worker, "model").len(), 1);
            let now = first + 500;
            for step in &steps {
                match step {
                    Step::Sleep(s) => tokio::time::sleep(secs(*s)).await,
                    Step::Jump(s) => {
                        tokio::time::advance(secs(*s)).await;
                        settle().await;
                    }
                }
            }
            settle().await;
            let seen = ticks(&worker, "model")[1..].to_vec();
            (seen, model(period, now, missed, &steps))
        });
        prop_assert_eq!(seen, expected);
    }
}

#[test]
fn outside_a_runtime_schedule_panics_before_registering_anything() {
    let worker = Worker::new();
    let outside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = worker.schedule("s", Schedule::every(secs(1)), ok_body());
    }));
    assert!(outside.is_err());
    assert!(!worker.has_schedule("s"));
    // Inside one, the same name is free and the driver runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        worker.schedule("s", Schedule::every(secs(1)), ok_body()).unwrap();
        first_run(&worker, "s").await;
    });
}

#[cfg(feature = "serde")]
#[tokio::test(start_paused = true)]
async fn schedule_infos_round_trip_through_json_in_health() {
    let worker = Worker::new();
    worker
        .schedule("s", Schedule::every(secs(10)), ok_body())
        .unwrap();
    first_run(&worker, "s").await;
    let health = worker.health();
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["schedules"][0]["name"], "s");
    assert_eq!(json["schedules"][0]["cadence"], "every 10000 ms");
    assert_eq!(json["schedules"][0]["paused"], false);
    assert_eq!(json["schedules"][0]["last_run"]["status"]["status"], "completed");
    let back: background_worker::Health = serde_json::from_value(json).unwrap();
    assert_eq!(back, health);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_idle_schedules_share_one_driver_task() {
    let worker = Worker::new();
    let alive = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let before = alive();
    for i in 0..10_000 {
        worker
            .schedule(format!("s{i}"), Schedule::every(secs(86_400)), ok_body())
            .unwrap();
    }
    settle().await;
    assert_eq!(alive() - before, 1, "one driver, however many schedules");
    assert_eq!(worker.schedule_count(), 10_000);
    assert_eq!(worker.task_count(), 0);
    worker.shutdown().await;
    settle().await;
    assert_eq!(alive(), before, "the driver ends with the shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_jitter_longer_than_the_period_still_runs_ticks_in_order() {
    let worker = Worker::new();
    let schedule = Schedule::every(secs(1)).jitter(secs(5)).overlap(Overlap::Allow);
    worker.schedule("wide", schedule, ok_body()).unwrap();
    within(120, sleep_secs(60)).await;
    let ticks = ticks(&worker, "wide");
    assert!(ticks.len() >= 10, "runs go on: {ticks:?}");
    assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
    assert!(worker.schedule_info("wide").unwrap().next_run.is_some());
}
