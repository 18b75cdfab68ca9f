//! Many schedules on a multi-thread runtime in real time, while another task pauses, resumes,
//! removes and re-adds them: every run's tick is one of its schedule's ticks, no tick of a
//! schedule runs twice, and a removed schedule starts no tick taken after its
//! removal. No timing bound is asserted (ticks may be missed under load), only these rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use background_worker::{Overlap, Schedule, Worker};

const SCHEDULES: usize = 300;
const PERIOD_MS: u64 = 20;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

type Runs = Arc<Mutex<HashMap<String, Vec<u64>>>>;

fn add(worker: &Worker, name: &str, runs: &Runs) {
    let runs = Arc::clone(runs);
    let schedule = Schedule::every(Duration::from_millis(PERIOD_MS)).overlap(Overlap::Allow);
    worker
        .schedule(name, schedule, move |_ctx, tick| {
            runs.lock()
                .unwrap()
                .entry(tick.schedule().to_owned())
                .or_default()
                .push(tick.scheduled_at_ms());
            async { Ok(()) }
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_under_churn_keep_their_rules() {
    let worker = Worker::builder()
        .retain_finished_for(Duration::from_secs(60))
        .build();
    let runs: Runs = Arc::default();
    let names: Vec<String> = (0..SCHEDULES).map(|i| format!("s{i}")).collect();
    for name in &names {
        add(&worker, name, &runs);
    }
    // Removal times (ms since the epoch) of the schedules removed for good.
    let mut removed_at = HashMap::new();
    let churn = async {
        for round in 0..40u64 {
            tokio::time::sleep(Duration::from_millis(7)).await;
            let i = (round * 7919) as usize % SCHEDULES;
            match round % 4 {
                0 => assert!(worker.pause_schedule(&names[i])),
                1 => assert!(worker.resume_schedule(&names[(i + 3) % SCHEDULES])),
                2 => {
                    let name = &names[(i + 11) % SCHEDULES];
                    if worker.remove_schedule(name) {
                        removed_at.insert(name.clone(), now_ms());
                    }
                }
                _ => {
                    // Remove and re-add under the same name: a new schedule from now on.
                    let name = &names[(i + 17) % SCHEDULES];
                    if !removed_at.contains_key(name) && worker.remove_schedule(name) {
                        add(&worker, name, &runs);
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), churn)
        .await
        .expect("churn in time");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = tokio::time::timeout(Duration::from_secs(60), worker.shutdown())
        .await
        .expect("shutdown in time");
    assert_eq!(report.aborted(), 0);

    let runs = runs.lock().unwrap();
    let total: usize = runs.values().map(Vec::len).sum();
    assert!(total >= SCHEDULES, "at least one round of ticks ran: {total}");
    for (name, ticks) in runs.iter() {
        assert!(
            ticks.iter().all(|tick| tick % PERIOD_MS == 0),
            "{name}: {ticks:?}"
        );
        // No tick ran twice (a re-added schedule starts after the removed one's last tick, so
        // the rule holds across both). Bodies may start out of order on two threads.
        let mut sorted = ticks.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ticks.len(), "{name}: a tick ran twice: {ticks:?}");
        for tick in ticks {
            assert!(
                worker.task_info(&format!("{name}@{tick}")).is_some(),
                "{name}@{tick} is tracked"
            );
        }
        if let Some(&removed) = removed_at.get(name) {
            // A tick is taken when it is due, so a taken tick is at or before the removal
            // (a few ms of slack: the clock counts whole milliseconds).
            assert!(
                ticks.iter().all(|&tick| tick <= removed + 5),
                "{name} removed at {removed}: {ticks:?}"
            );
        }
    }
}
