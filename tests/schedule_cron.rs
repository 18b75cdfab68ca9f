//! Cron schedules (feature `cron`): ticks in paused time, time zones, and bad expressions as
//! typed errors, never a panic.
#![cfg(feature = "cron")]

mod common;

use std::time::Duration;

use background_worker::{CronError, Schedule, TaskStatus, Tick, Worker};
use common::{sleep_secs, within};
use proptest::prelude::*;

fn ticks(worker: &Worker, name: &str) -> Vec<u64> {
    let mut ticks: Vec<u64> = worker
        .schedule_runs(name)
        .iter()
        .map(|run| Tick::from_run_id(&run.id).expect("a run id").scheduled_at_ms())
        .collect();
    ticks.reverse();
    ticks
}

/// Waits (paused time, in half-second steps, at most two hours) for the first run of `name`.
async fn first_run(worker: &Worker, name: &str) -> u64 {
    within(7_200, async {
        loop {
            if let Some(tick) = ticks(worker, name).first() {
                return *tick;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_cron_with_seconds_ticks_on_its_matching_seconds() {
    let worker = Worker::new();
    let every_ten = Schedule::cron("*/10 * * * * *").unwrap();
    worker
        .schedule("ten", every_ten, |_ctx, _tick| async { Ok(()) })
        .unwrap();
    first_run(&worker, "ten").await;
    sleep_secs(35).await;
    let ticks = ticks(&worker, "ten");
    assert_eq!(ticks.len(), 4, "{ticks:?}");
    assert!(ticks.iter().all(|tick| tick % 10_000 == 0), "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1] - w[0] == 10_000), "{ticks:?}");
    let info = worker.schedule_info("ten").unwrap();
    assert_eq!(info.cadence, "cron \"*/10 * * * * *\" in UTC");
    assert_eq!(info.last_run.unwrap().status, Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn a_five_field_cron_ticks_on_whole_minutes_in_its_time_zone() {
    let worker = Worker::new();
    // Kathmandu is UTC+05:45: its whole hours are at :15 past a UTC hour.
    let hourly = Schedule::cron_in("0 * * * *", "Asia/Kathmandu").unwrap();
    worker
        .schedule("hourly", hourly, |_ctx, _tick| async { Ok(()) })
        .unwrap();
    first_run(&worker, "hourly").await;
    sleep_secs(2 * 3600 + 60).await;
    let ticks = ticks(&worker, "hourly");
    assert_eq!(ticks.len(), 3, "{ticks:?}");
    assert!(
        ticks.iter().all(|tick| tick % 3_600_000 == 15 * 60_000),
        "{ticks:?}"
    );
}

#[test]
fn bad_expressions_are_typed_errors() {
    for bad in [
        "",
        "   ",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 32 * *",
        "* * * 13 *",
        "*/0 * * * *",
        "5-1 * * * *",
        "@hourly?",
    ] {
        match Schedule::cron(bad) {
            Err(CronError::InvalidExpression { expression, reason }) => {
                assert_eq!(expression, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let error = Schedule::cron("0 0 30 2 *").unwrap_err();
    assert_eq!(
        error,
        CronError::NoTicks {
            expression: "0 0 30 2 *".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "cron expression \"0 0 30 2 *\" has no upcoming tick"
    );
    assert_eq!(
        Schedule::cron_in("* * * * *", "").unwrap_err(),
        CronError::UnknownTimeZone { zone: String::new() }
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Whatever the text, parsing returns (an expression or a typed error); it never panics.
    #[test]
    fn parsing_never_panics(expression in "[0-9*/,LW#?A-Za-z -]{0,40}") {
        let _ = Schedule::cron(&expression);
    }

    /// Fields built from cron's own vocabulary, to reach deeper than random text does.
    #[test]
    fn parsing_cron_shaped_text_never_panics(
        fields in prop::collection::vec(
            prop_oneof![
                Just("*".to_owned()),
                (0u32..100).prop_map(|n| n.to_string()),
                (0u32..100, 0u32..100).prop_map(|(a, b)| format!("{a}-{b}")),
                (0u32..100).prop_map(|n| format!("*/{n}")),
                (0u32..10, 0u32..10).prop_map(|(a, b)| format!("{a}#{b}")),
                Just("L".to_owned()),
                (0u32..40).prop_map(|n| format!("{n}W")),
                Just("MON-FRI".to_owned()),
                Just("?".to_owned()),
            ],
            0..8,
        )
    ) {
        let _ = Schedule::cron(&fields.join(" "));
    }
}

#[tokio::test(start_paused = true)]
async fn a_paused_cron_runs_its_latest_missed_tick_on_resume() {
    let worker = Worker::new();
    let every_ten = Schedule::cron("*/10 * * * * *").unwrap();
    worker
        .schedule("ten", every_ten, |_ctx, _tick| async { Ok(()) })
        .unwrap();
    let first = first_run(&worker, "ten").await;
    worker.pause_schedule("ten");
    sleep_secs(95).await;
    worker.resume_schedule("ten");
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    let ticks = ticks(&worker, "ten");
    assert_eq!(ticks.len(), 2, "{ticks:?}");
    // The first run came within half a second of its tick; 95 s later the latest tick is 90 s
    // after it.
    assert_eq!(ticks[1] - first, 90_000, "{ticks:?}");
}
