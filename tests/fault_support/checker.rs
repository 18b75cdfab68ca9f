//! The checker of `tests/cluster_faults.rs`: the invariants of the cluster view under faults,
//! stated once and read against a recorded [`History`] (Jepsen's way: scenarios only record;
//! this decides). Every time is ms since the Unix epoch on the test machine's clock (the
//! replicas run on the same machine, so their log times share it).
//!
//! The invariants:
//! 1. **Final is final.** A job seen `lost` by any replica is never seen in another status
//!    afterwards (by a request sent after that answer arrived) by any replica; a job seen
//!    terminal by a replica is never seen otherwise by that replica afterwards, nor with another
//!    terminal status by any. (Another replica may still show `running` for a moment, until the
//!    end reaches Redis: invariant 4 bounds that.)
//! 2. **An accepted cancel is kept.** A job whose `DELETE` was answered with anything but `404`
//!    (and not already `completed` or `failed`) never ends `completed` or `failed`.
//! 3. **A dead run stops.** No body runs on after its replica found its run dead, beyond the
//!    time to cancel it ([`Limits::cancel`]).
//! 4. **The truth arrives.** Every job that did not end `lost` is seen with its final status by
//!    every replica within [`Limits::settle`] of the later of its end and Redis answering again
//!    (`healed`).
//! 5. **No false 404, no slow answer.** No `404` for a job that exists, and no request to a live
//!    (not stopped) replica takes over [`Limits::request`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One answer of one replica to a polling client.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) replica: String,
    pub(crate) job: String,
    /// `GET` or `DELETE`.
    pub(crate) method: String,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// The HTTP status; 0 if the request failed (no answer).
    pub(crate) code: u16,
    /// The job's `"status"`, when the answer carried a job.
    pub(crate) status: Option<String>,
}

/// One run of a task body on a replica.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) replica: String,
    pub(crate) job: String,
    pub(crate) started: u64,
    pub(crate) ended: Option<u64>,
}

/// What a scenario recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub(crate) answers: Vec<Answer>,
    pub(crate) bodies: Vec<Body>,
    /// When a replica found its run dead (from its log).
    pub(crate) deaths: Vec<(String, u64)>,
    /// Times a replica was stopped (SIGSTOP to SIGCONT): its requests then may hang.
    pub(crate) paused: Vec<(String, u64, u64)>,
    /// Times a replica was cut off from Redis, until one lease after it could reach Redis
    /// again (when it must have found out): its answers about its own jobs are only its local
    /// view then, which invariant 1 does not judge.
    pub(crate) isolated: Vec<(String, u64, u64)>,
    /// When Redis answered every replica again after the last fault.
    pub(crate) healed: u64,
    /// When the scenario stopped recording.
    pub(crate) end: u64,
}

/// The bounds the invariants use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) cancel: u64,
    pub(crate) settle: u64,
    pub(crate) request: u64,
}

fn terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled" | "lost")
}

/// Every violation of the invariants in `history`, one line each (empty: none).
pub(crate) fn check(history: &History, limits: Limits) -> Vec<String> {
    let mut violations = Vec::new();
    let mut by_job: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for answer in &history.answers {
        by_job.entry(answer.job.as_str()).or_default().push(answer);
    }
    for answers in by_job.values_mut() {
        answers.sort_by_key(|answer| answer.sent);
    }

    for (job, answers) in &by_job {
        // 1. Final is final: per replica, nothing after a final answer differs from it; across
        // replicas, nothing after `lost` differs from it, and no two final answers differ.
        let mut first_final: Option<&Answer> = None;
        let mut per_replica: BTreeMap<&str, &Answer> = BTreeMap::new();
        let local_only = |answer: &Answer| {
            history.isolated.iter().any(|(replica, from, to)| {
                *replica == answer.replica && answer.received >= *from && answer.sent <= *to
            })
        };
        for answer in answers.iter().filter(|answer| !local_only(answer)) {
            let Some(status) = answer.status.as_deref() else {
                continue;
            };
            let conflict = per_replica
                .get(answer.replica.as_str())
                .copied()
                .filter(|before| answer.sent > before.received && before.status.as_deref() != Some(status))
                .or_else(|| {
                    first_final.filter(|before| {
                        let was = before.status.as_deref().unwrap_or_default();
                        answer.sent > before.received && was != status && (was == "lost" || terminal(status))
                    })
                });
            if let Some(before) = conflict {
                violations.push(format!(
                    "1 final is final: {job} was {} on {} at {}, then {status} on {} at {}",
                    before.status.as_deref().unwrap_or_default(),
                    before.replica,
                    before.received,
                    answer.replica,
                    answer.sent
                ));
                break;
            }
            if terminal(status) {
                per_replica.entry(answer.replica.as_str()).or_insert(answer);
                first_final.get_or_insert(answer);
            }
        }
        // 2. An accepted cancel is kept.
        let accepted = answers.iter().find(|answer| {
            answer.method == "DELETE"
                && answer.code != 404
                && answer.code != 0
                && !matches!(answer.status.as_deref(), Some("completed" | "failed"))
        });
        if let Some(cancel) = accepted {
            if let Some(ended) = answers.iter().find(|answer| {
                answer.sent > cancel.sent && matches!(answer.status.as_deref(), Some("completed" | "failed"))
            }) {
                violations.push(format!(
                    "2 an accepted cancel is kept: {job}'s cancel on {} answered {} {:?} at {}, then {} showed {:?} at {}",
                    cancel.replica,
                    cancel.code,
                    cancel.status,
                    cancel.received,
                    ended.replica,
                    ended.status,
                    ended.sent
                ));
            }
        }
        // 5a. No false 404 (every job polled was submitted before the polling began).
        if let Some(missing) = answers.iter().find(|answer| answer.code == 404) {
            violations.push(format!(
                "5 no false 404: {job} answered 404 on {} at {}",
                missing.replica, missing.sent
            ));
        }
        // 4. The truth arrives.
        let last = answers
            .iter()
            .rev()
            .find_map(|answer| answer.status.as_deref().filter(|status| terminal(status)));
        if let Some(final_status) = last.filter(|status| *status != "lost") {
            let ended = history
                .bodies
                .iter()
                .filter(|body| body.job == *job)
                .filter_map(|body| body.ended)
                .max()
                .unwrap_or(0);
            let due = ended.max(history.healed) + limits.settle;
            for answer in answers
                .iter()
                .filter(|answer| answer.sent > due && answer.method == "GET")
            {
                if answer.status.as_deref() != Some(final_status) {
                    violations.push(format!(
                        "4 the truth arrives: {job} ended {final_status}, but {} answered {} {:?} at {} ({} ms after it was due)",
                        answer.replica,
                        answer.code,
                        answer.status,
                        answer.sent,
                        answer.sent - due
                    ));
                    break;
                }
            }
        }
    }

    // 3. A dead run stops.
    for (replica, found) in &history.deaths {
        for body in history
            .bodies
            .iter()
            .filter(|body| body.replica == *replica && body.started < *found)
        {
            let ended = body.ended.unwrap_or(history.end);
            if ended > found + limits.cancel {
                violations.push(format!(
                    "3 a dead run stops: {}'s body on {replica} ran until {ended}, {} ms after its run was found dead at {found}",
                    body.job,
                    ended - found
                ));
            }
        }
    }

    // 5b. No slow answer from a live replica.
    for answer in &history.answers {
        let paused = history.paused.iter().any(|(replica, from, to)| {
            *replica == answer.replica && answer.sent <= *to && answer.received >= *from
        });
        let took = answer.received.saturating_sub(answer.sent);
        if !paused && (took > limits.request || answer.code == 0) {
            violations.push(format!(
                "5 no slow answer: {} {} on {} took {took} ms (code {})",
                answer.method, answer.job, answer.replica, answer.code
            ));
        }
    }
    violations
}

/// Panics with every violation and a summary of the history, if there is any.
#[track_caller]
pub(crate) fn assert_holds(scenario: &str, history: &History, limits: Limits) {
    let violations = check(history, limits);
    if violations.is_empty() {
        return;
    }
    let mut report = format!(
        "{scenario}: {} violation(s) in a history of {} answers, {} bodies, {} deaths:\n",
        violations.len(),
        history.answers.len(),
        history.bodies.len(),
        history.deaths.len()
    );
    for violation in violations.iter().take(20) {
        let _ = writeln!(report, "  {violation}");
    }
    panic!("{report}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(replica: &str, job: &str, at: u64, status: &str) -> Answer {
        Answer {
            replica: replica.into(),
            job: job.into(),
            method: "GET".into(),
            sent: at,
            received: at + 5,
            code: 200,
            status: Some(status.into()),
        }
    }

    const LIMITS: Limits = Limits {
        cancel: 1_000,
        settle: 2_000,
        request: 5_000,
    };

    #[test]
    fn the_checker_sees_each_violation() {
        // The first fault: lost on b, then running again, then completed.
        let history = History {
            answers: vec![
                get("b", "j", 100, "running"),
                get("b", "j", 200, "lost"),
                get("b", "j", 300, "running"),
                get("a", "j", 400, "completed"),
            ],
            healed: 0,
            end: 500,
            ..History::default()
        };
        let violations = check(&history, LIMITS);
        assert!(violations.iter().any(|v| v.starts_with("1 ")), "{violations:?}");
        // A cancel answered lost, then completed.
        let mut cancel = get("b", "k", 100, "lost");
        cancel.method = "DELETE".into();
        let history = History {
            answers: vec![cancel, get("a", "k", 200, "completed")],
            ..History::default()
        };
        let violations = check(&history, LIMITS);
        assert!(violations.iter().any(|v| v.starts_with("2 ")), "{violations:?}");
        // A body that ran on after its run was found dead; a false 404; a slow answer.
        let mut missing = get("b", "m", 100, "x");
        missing.code = 404;
        missing.status = None;
        let mut slow = get("a", "m", 200, "running");
        slow.received = 6_000;
        let history = History {
            answers: vec![missing, slow],
            bodies: vec![Body {
                replica: "a".into(),
                job: "m".into(),
                started: 0,
                ended: Some(5_000),
            }],
            deaths: vec![("a".into(), 1_000)],
            end: 7_000,
            ..History::default()
        };
        let violations = check(&history, LIMITS);
        for rule in ["3 ", "5 no false", "5 no slow"] {
            assert!(
                violations.iter().any(|v| v.starts_with(rule)),
                "{rule}: {violations:?}"
            );
        }
        // The truth late: completed on a, still running on b 3 s later.
        let history = History {
            answers: vec![get("a", "n", 1_000, "completed"), get("b", "n", 4_000, "running")],
            bodies: vec![Body {
                replica: "a".into(),
                job: "n".into(),
                started: 0,
                ended: Some(900),
            }],
            ..History::default()
        };
        let violations = check(&history, LIMITS);
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("1 ") || v.starts_with("4 ")),
            "{violations:?}"
        );
        // And a clean history passes.
        let history = History {
            answers: vec![get("a", "o", 100, "running"), get("b", "o", 3_000, "completed")],
            bodies: vec![Body {
                replica: "a".into(),
                job: "o".into(),
                started: 0,
                ended: Some(500),
            }],
            ..History::default()
        };
        assert_eq!(check(&history, LIMITS), Vec::<String>::new());
    }
}
