//! The cluster queries: one job, a page of jobs, a cancel request. Each read that a broken
//! connection interrupted is retried (the connection manager reconnects in the background,
//! but the command that hit the break still fails).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::redis::conn::Conn;
use redis::{RedisError, Value};

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

/// The job `id` through the `READ` script: an unfinished record of a dead run is `lost`; a
/// missing record while Redis's epoch is young is [`ClusterError::NotKnownYet`].
pub(crate) async fn job(inner: &Shared, conn: Conn, id: &str) -> Result<Option<ClusterJob>, ClusterError> {
    let key = inner.keys.job(&digest(id));
    let epoch = inner.keys.epoch();
    let reply: Vec<Value> = retry(&inner.link.health, "read a job", || {
        let mut conn = conn.clone();
        let mut invocation = inner.scripts.read.key(&key);
        invocation
            .key(&epoch)
            .arg(inner.keys.prefix())
            .arg(inner.settings.lease_ms());
        async move { invocation.invoke_async(&mut conn).await }
    })
    .await
    .map_err(|error| record_error(id, error))?;
    let malformed = || ClusterError::Malformed {
        id: id.to_owned(),
        reason: "the read script answered an unexpected shape".to_owned(),
    };
    let code = match reply.first() {
        Some(Value::Int(code)) => *code,
        _ => return Err(malformed()),
    };
    match code {
        0 => Ok(None),
        -1 => {
            let ms = match reply.get(1) {
                Some(Value::Int(ms)) => u64::try_from(*ms).unwrap_or(0),
                _ => 0,
            };
            Err(ClusterError::NotKnownYet {
                id: id.to_owned(),
                retry_after: Duration::from_millis(ms.max(1)),
            })
        }
        1 | 2 => {
            let mut fields = HashMap::with_capacity(reply.len() / 2);
            for pair in reply[1..].chunks_exact(2) {
                match (&pair[0], &pair[1]) {
                    (Value::BulkString(name), Value::BulkString(value)) => {
                        let name = String::from_utf8(name.clone()).map_err(|_| malformed())?;
                        fields.insert(name, value.clone());
                    }
                    _ => return Err(malformed()),
                }
            }
            let job = ClusterJob::parse(id, fields)?;
            Ok(if code == 2 { job.map(ClusterJob::lost) } else { job })
        }
        _ => Err(malformed()),
    }
}

pub(crate) async fn page(
    inner: &Shared,
    conn: Conn,
    after: Option<&PageCursor>,
    limit: usize,
    newest_first: bool,
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
        invocation
            .arg(&score)
            .arg(&member)
            .arg(limit)
            .arg(if newest_first { "desc" } else { "asc" });
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
        let epoch = inner.keys.epoch();
        let lease_ms = inner.settings.lease_ms();
        let verdicts: Vec<i64> = retry(health, "judge replica runs", || {
            let mut conn = conn.clone();
            let mut pipe = redis::pipe();
            pipe.load_script(&inner.scripts.judge).ignore();
            for (replica, incarnation) in &owners {
                let replica_hash = digest(replica);
                pipe.invoke_script(
                    inner
                        .scripts
                        .judge
                        .key(inner.keys.lease(&replica_hash))
                        .key(inner.keys.dead(&replica_hash, incarnation))
                        .key(&epoch)
                        .arg(incarnation)
                        .arg(lease_ms),
                );
            }
            async move { pipe.query_async(&mut conn).await }
        })
        .await?;
        let dead: HashSet<&(String, String)> = owners
            .iter()
            .zip(&verdicts)
            .filter(|(_, verdict)| **verdict == 1)
            .map(|(owner, _)| owner)
            .collect();
        for job in &mut jobs {
            if !job.status.is_terminal() && dead.contains(&(job.replica.clone(), job.incarnation.clone())) {
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

/// What became of a cancel request for another run's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelRequest {
    /// Stored and published for the owner.
    Stored,
    /// The owner's run is dead: the job is lost, and can never end `completed` or `failed`.
    RunDead,
    /// The job is already terminal or lost.
    Finished,
    /// The record is not that submission any more.
    Changed,
}

/// Asks the owner run of `job` to cancel it, through the `CANCEL` script: stored and published
/// while that run is alive; never stored for a dead run (its job is lost).
pub(crate) async fn request_cancel(
    inner: &Shared,
    conn: Conn,
    job: &ClusterJob,
    ttl: Duration,
) -> Result<CancelRequest, ClusterError> {
    let keys = &inner.keys;
    let replica_hash = digest(&job.replica);
    let member = digest(&job.id);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let code: i64 = retry(&inner.link.health, "request a cancel", || {
        let mut conn = conn.clone();
        let mut invocation = inner.scripts.cancel.key(keys.job(&member));
        invocation
            .key(keys.lease(&replica_hash))
            .key(keys.dead(&replica_hash, &job.incarnation))
            .key(keys.epoch())
            .key(keys.cancels(&replica_hash, &job.incarnation))
            .arg(&job.id)
            .arg(&member)
            .arg(&job.replica)
            .arg(&job.incarnation)
            .arg(job.generation)
            .arg(ttl_ms)
            .arg(inner.settings.lease_ms());
        async move { invocation.invoke_async(&mut conn).await }
    })
    .await?;
    Ok(match code {
        1 => CancelRequest::Stored,
        2 => CancelRequest::RunDead,
        3 => CancelRequest::Finished,
        _ => CancelRequest::Changed,
    })
}
