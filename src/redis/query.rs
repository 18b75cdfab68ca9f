//! The cluster queries: one job, a page of jobs, a cancel request. Each read that a broken
//! connection interrupted is retried (the connection manager reconnects in the background,
//! but the command that hit the break still fails).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::RedisError;

use crate::redis::call::retry;
use crate::redis::error::ClusterError;
use crate::redis::job::ClusterJob;
use crate::redis::keys::digest;
use crate::redis::page::{Page, PageCursor};
use crate::redis::shared::Shared;

/// A record that is not a hash, or whose fields are not text, is malformed, not a failure.
fn record_error(id: &str, error: RedisError) -> ClusterError {
    if error.code() == Some("WRONGTYPE") || error.kind() == redis::ErrorKind::UnexpectedReturnType {
        ClusterError::Malformed {
            id: id.to_owned(),
            reason: format!("the key does not hold a record ({error})"),
        }
    } else {
        error.into()
    }
}

pub(crate) async fn job(
    inner: &Shared,
    conn: ConnectionManager,
    id: &str,
) -> Result<Option<ClusterJob>, ClusterError> {
    let key = inner.keys.job(&digest(id));
    let fields: HashMap<String, Vec<u8>> = retry(&inner.link.health, "read a job", || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await }
    })
    .await
    .map_err(|error| record_error(id, error))?;
    let Some(job) = ClusterJob::parse(id, fields)? else {
        return Ok(None);
    };
    if job.status.is_terminal() {
        return Ok(Some(job));
    }
    let lease_key = inner.keys.lease(&digest(&job.replica));
    let lease: Option<String> = retry(&inner.link.health, "read a lease", || {
        let mut conn = conn.clone();
        let key = lease_key.clone();
        async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
    })
    .await?;
    Ok(Some(if lease.as_deref() == Some(job.incarnation.as_str()) {
        job
    } else {
        job.lost()
    }))
}

pub(crate) async fn page(
    inner: &Shared,
    conn: ConnectionManager,
    after: Option<&PageCursor>,
    limit: usize,
) -> Result<Page, ClusterError> {
    let health = &inner.link.health;
    let (score, member) = match after {
        Some(cursor) => (cursor.score.to_string(), cursor.member.clone()),
        None => ("-inf".to_owned(), String::new()),
    };
    let index = inner.keys.index();
    let flat: Vec<String> = retry(health, "list jobs", || {
        let mut conn = conn.clone();
        let mut invocation = inner.scripts.page.key(&index);
        invocation.arg(&score).arg(&member).arg(limit);
        async move { invocation.invoke_async(&mut conn).await }
    })
    .await?;
    let entries: Vec<(String, u64)> = flat
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].parse::<f64>().map_or(0, |s| s as u64)))
        .collect();
    let records: Vec<HashMap<String, Vec<u8>>> = if entries.is_empty() {
        Vec::new()
    } else {
        retry(health, "read jobs", || {
            let mut conn = conn.clone();
            let mut pipe = redis::pipe();
            for (member, _) in &entries {
                pipe.cmd("HGETALL").arg(inner.keys.job(member));
            }
            async move { pipe.query_async(&mut conn).await }
        })
        .await
        .map_err(|error| record_error("(listing)", error))?
    };
    let mut jobs = Vec::with_capacity(records.len());
    for ((member, _), fields) in entries.iter().zip(records) {
        if fields.is_empty() {
            continue; // expired, not trimmed yet
        }
        let id = fields
            .get("id")
            .and_then(|id| String::from_utf8(id.clone()).ok())
            .filter(|id| digest(id) == *member)
            .ok_or_else(|| ClusterError::Malformed {
                id: format!("(record {member})"),
                reason: "its id field is missing or does not match its key".to_owned(),
            })?;
        if let Some(job) = ClusterJob::parse(&id, fields)? {
            jobs.push(job);
        }
    }
    let owners: Vec<(String, String)> = jobs
        .iter()
        .filter(|job| !job.status.is_terminal())
        .map(|job| (job.replica.clone(), job.incarnation.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !owners.is_empty() {
        let leases: Vec<Option<String>> = retry(health, "read leases", || {
            let mut conn = conn.clone();
            let mut pipe = redis::pipe();
            for (replica, _) in &owners {
                pipe.cmd("GET").arg(inner.keys.lease(&digest(replica)));
            }
            async move { pipe.query_async(&mut conn).await }
        })
        .await?;
        let alive: HashSet<&(String, String)> = owners
            .iter()
            .zip(&leases)
            .filter(|((_, incarnation), lease)| lease.as_deref() == Some(incarnation.as_str()))
            .map(|(owner, _)| owner)
            .collect();
        for job in &mut jobs {
            if !job.status.is_terminal() && !alive.contains(&(job.replica.clone(), job.incarnation.clone())) {
                *job = job.clone().lost();
            }
        }
    }
    let next = (entries.len() == limit).then(|| {
        let (member, score) = entries[entries.len() - 1].clone();
        PageCursor { score, member }
    });
    Ok(Page { jobs, next })
}

/// Stores a cancel request for the job's owner and publishes it on the owner's channel.
pub(crate) async fn request_cancel(
    inner: &Shared,
    conn: ConnectionManager,
    job: &ClusterJob,
    ttl: Duration,
) -> Result<(), ClusterError> {
    let key = inner.keys.cancels(&digest(&job.replica), &job.incarnation);
    let payload = format!("{}:{}", job.generation, job.id);
    let member = digest(&job.id);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    retry(&inner.link.health, "request a cancel", || {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg(&key).arg(&member).arg(&payload).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
        pipe.cmd("PUBLISH").arg(&key).arg(&payload).ignore();
        async move { pipe.query_async::<()>(&mut conn).await }
    })
    .await?;
    Ok(())
}
