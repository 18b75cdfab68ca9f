//! `GET /jobs`: its query (`limit`, `cursor`, `status`, `replica`) and one page, locally from a
//! [`JobIndex`] (or a sorted snapshot without one) or across the cluster from the mirror.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde::Deserialize;

use super::error::ApiError;
use super::index::JobIndex;
use super::json::{JobPage, JobView};
use crate::worker::Worker;

/// Jobs on a page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most jobs one page holds.
pub const MAX_LIMIT: usize = 1_000;
/// The most jobs one request looks at while filtering: past it, the page ends early with a
/// `next_cursor`, so that a rare status never makes one request walk every job.
pub(crate) const SCAN_BUDGET: usize = 10_000;

const STATUSES: [&str; 6] = ["pending", "running", "completed", "failed", "cancelled", "lost"];

/// The query of `GET /jobs`, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery {
    pub(crate) limit: usize,
    pub(crate) cursor: Option<String>,
    pub(crate) status: Option<&'static str>,
    pub(crate) replica: Option<String>,
    /// Only this schedule's runs (`schedules.rs` pages them).
    pub(crate) schedule: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawQuery {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    replica: Option<String>,
    schedule: Option<String>,
}

impl ListQuery {
    /// Parses `?limit=N&cursor=C&status=S&replica=R&schedule=NAME`. Other parameters are
    /// ignored (so that a later parameter can be sent to an older server). Empty values count
    /// as absent.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let raw: RawQuery = serde_urlencoded_from(query.unwrap_or_default())?;
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
        let limit = match raw.limit.as_deref().filter(|l| !l.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n @ 1..=MAX_LIMIT) => n,
                _ => return Err(bad(format!("limit must be a whole number from 1 to {MAX_LIMIT}"))),
            },
        };
        let status = match raw.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => match STATUSES.iter().find(|s| **s == text) {
                Some(status) => Some(*status),
                None => return Err(bad(format!("status must be one of {}", STATUSES.join(", ")))),
            },
        };
        if raw.replica.as_ref().is_some_and(|r| r.len() > 256) {
            return Err(bad("replica must be at most 256 bytes".to_owned()));
        }
        if raw
            .schedule
            .as_ref()
            .is_some_and(|name| name.len() > crate::schedule::MAX_SCHEDULE_NAME)
        {
            return Err(bad(format!(
                "schedule must be at most {} bytes",
                crate::schedule::MAX_SCHEDULE_NAME
            )));
        }
        if raw.cursor.as_ref().is_some_and(|c| c.len() > 256) {
            return Err(invalid_cursor());
        }
        Ok(Self {
            limit,
            cursor: raw.cursor.filter(|c| !c.is_empty()),
            status,
            replica: raw.replica.filter(|r| !r.is_empty()),
            schedule: raw.schedule.filter(|name| !name.is_empty()),
        })
    }
}

/// The query string as `RawQuery`, repeated keys taking the last value.
fn serde_urlencoded_from(query: &str) -> Result<RawQuery, ApiError> {
    let pairs: HashMap<String, String> = form_pairs(query).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the query string is not valid URL encoding",
        )
    })?;
    let take = |key: &str| pairs.get(key).cloned();
    Ok(RawQuery {
        limit: take("limit"),
        cursor: take("cursor"),
        status: take("status"),
        replica: take("replica"),
        schedule: take("schedule"),
    })
}

/// `a=1&b=2` with `%XX` and `+` decoded; `None` if a value is not UTF-8 once decoded.
fn form_pairs(query: &str) -> Option<HashMap<String, String>> {
    let mut pairs = HashMap::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.insert(decode(key)?, decode(value)?);
    }
    Some(pairs)
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub(crate) fn invalid_cursor() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid cursor: pass back a next_cursor from an earlier page",
    )
}

/// A page of the worker's own jobs, newest first, through the index.
pub(crate) fn local_page(worker: &Worker, index: &JobIndex, query: &ListQuery) -> Result<JobPage, ApiError> {
    let mut before = match &query.cursor {
        None => None,
        Some(cursor) => Some(cursor.parse::<u64>().map_err(|_| invalid_cursor())?),
    };
    // Without a mirror jobs have no replica: a replica filter matches nothing.
    if query.replica.is_some() {
        return Ok(JobPage::new(Vec::new(), None));
    }
    let mut jobs = Vec::with_capacity(query.limit);
    let mut budget = SCAN_BUDGET;
    loop {
        let want = query.limit - jobs.len();
        let (found, stopped, looked) = index.scan(before, query.status, want, budget.min(want.max(256)));
        let mut stale = Vec::new();
        for entry in found {
            match worker.task_info(&entry.id) {
                Some(info) if info.generation == entry.generation => {
                    if query.status.is_none_or(|status| status == info.status.name()) {
                        jobs.push(JobView::from(info));
                    }
                }
                _ => stale.push(entry.generation),
            }
        }
        index.forget(&stale);
        budget = budget.saturating_sub(looked);
        match stopped {
            None => return Ok(JobPage::new(jobs, None)),
            Some(last) => {
                before = Some(last);
                if jobs.len() == query.limit || budget == 0 || looked == 0 {
                    return Ok(JobPage::new(jobs, Some(last.to_string())));
                }
            }
        }
    }
}

/// A page of the worker's own jobs, newest first, from a sorted snapshot of all of them: what
/// a console without a [`JobIndex`] does (its time grows with the number of jobs).
pub(crate) fn snapshot_page(worker: &Worker, query: &ListQuery) -> Result<JobPage, ApiError> {
    let before = match &query.cursor {
        None => u64::MAX,
        Some(cursor) => cursor.parse::<u64>().map_err(|_| invalid_cursor())?,
    };
    if query.replica.is_some() {
        return Ok(JobPage::new(Vec::new(), None));
    }
    let mut tasks = worker.tasks_where(|status| query.status.is_none_or(|wanted| wanted == status.name()));
    tasks.retain(|info| info.generation < before);
    tasks.sort_unstable_by_key(|info| std::cmp::Reverse(info.generation));
    let more = tasks.len() > query.limit;
    tasks.truncate(query.limit);
    let next = more
        .then(|| tasks.last().map(|info| info.generation.to_string()))
        .flatten();
    Ok(JobPage::new(tasks.into_iter().map(JobView::from).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_checked() {
        let query =
            ListQuery::parse(Some("limit=5&status=running&cursor=12&replica=a%20b&schedule=x")).unwrap();
        assert_eq!(
            (
                query.limit,
                query.status,
                query.cursor.as_deref(),
                query.replica.as_deref()
            ),
            (5, Some("running"), Some("12"), Some("a b"))
        );
        assert_eq!(ListQuery::parse(None).unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "status=done",
            "limit=%zz",
            "status=%ff",
        ] {
            assert_eq!(
                ListQuery::parse(Some(bad)).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }
}
