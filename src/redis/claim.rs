//! The claim calls (`scripts/claim.lua`, `scripts/unclaim.lua`): below the handle, beside the
//! queries. A claim is the job's record itself, written pending by one atomic script before the
//! task is spawned; it is held by the claiming run's lease (no TTL of its own) and ends with the
//! job (terminal) or the run (dead: `lost`).

use std::time::Duration;

use crate::redis::conn::Conn;
use redis::{RedisResult, Value};

use crate::redis::call::retry;
use crate::redis::shared::{Run, Shared};

/// What the claim script answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// Claimed, with its fencing token.
    Token(u64),
    /// Held by a live job of `replica`.
    Held { replica: String, token: Option<u64> },
    /// No record, and the epoch is young: ask again after this.
    NotKnownYet(Duration),
    /// The record holds another id.
    Collision,
    /// The claiming run is dead.
    RunDead,
}

/// One submission to claim: `id` (its SHA-1 `member`), the generation it will be spawned
/// under, its submission time.
#[derive(Debug)]
pub(crate) struct Submission<'a> {
    pub(crate) id: &'a str,
    pub(crate) member: &'a str,
    pub(crate) generation: u64,
    pub(crate) submitted_ms: u64,
    /// Claimed once: refused over any record of the id, even a terminal one (a schedule's
    /// tick; see `scripts/claim.lua`).
    pub(crate) once: bool,
}

fn text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::BulkString(bytes)) => String::from_utf8(bytes.clone()).ok(),
        Some(Value::SimpleString(text)) => Some(text.clone()),
        Some(Value::Int(number)) => Some(number.to_string()),
        _ => None,
    }
}

fn unexpected(reply: &[Value]) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "the claim script answered an unexpected shape",
        format!("{reply:?}"),
    ))
}

/// Runs the claim script for `submission` under `run` (which must hold its lease). Retried
/// when the connection broke: the script answers a repeated claim of the same submission with
/// its token.
pub(crate) async fn claim(
    shared: &Shared,
    conn: &Conn,
    run: &Run,
    submission: &Submission<'_>,
) -> RedisResult<Claimed> {
    let keys = &shared.keys;
    let job = keys.job(submission.member);
    let owned = keys.owned(&shared.replica_hash, &run.incarnation);
    let lease = keys.lease(&shared.replica_hash);
    let dead = keys.dead(&shared.replica_hash, &run.incarnation);
    let (index, expiry, epoch, fence) = (keys.index(), keys.expiry(), keys.epoch(), keys.fence());
    let reply: Vec<Value> = retry(&shared.link.health, "claim a job id", || {
        let mut conn = conn.clone();
        let mut invocation = shared.scripts.claim.key(&job);
        invocation
            .key(&index)
            .key(&expiry)
            .key(&owned)
            .key(&lease)
            .key(&dead)
            .key(&epoch)
            .key(&fence)
            .arg(submission.id)
            .arg(submission.member)
            .arg(&shared.settings.replica)
            .arg(&run.incarnation)
            .arg(submission.generation)
            .arg(submission.submitted_ms)
            .arg(keys.prefix())
            .arg(shared.settings.lease_ms())
            .arg(if submission.once { "1" } else { "0" });
        async move { invocation.invoke_async(&mut conn).await }
    })
    .await?;
    let number = |at: usize| text(reply.get(at)).and_then(|text| text.parse::<u64>().ok());
    match reply.first() {
        Some(Value::Int(1)) => number(1).map(Claimed::Token).ok_or_else(|| unexpected(&reply)),
        Some(Value::Int(0)) => Ok(Claimed::Held {
            replica: text(reply.get(1)).ok_or_else(|| unexpected(&reply))?,
            token: number(2),
        }),
        Some(Value::Int(-1)) => Ok(Claimed::NotKnownYet(Duration::from_millis(
            number(1).unwrap_or(1).max(1),
        ))),
        Some(Value::Int(-2)) => Ok(Claimed::Collision),
        Some(Value::Int(-3)) => Ok(Claimed::RunDead),
        _ => Err(unexpected(&reply)),
    }
}

/// Takes back the claim of `submission` (with `token`) under `run`, if the record still is that
/// pending claim. `Ok(true)` if it was taken back.
pub(crate) async fn unclaim(
    shared: &Shared,
    conn: &Conn,
    run: &Run,
    submission: &Submission<'_>,
    token: u64,
) -> RedisResult<bool> {
    let keys = &shared.keys;
    let job = keys.job(submission.member);
    let index = keys.index();
    let owned = keys.owned(&shared.replica_hash, &run.incarnation);
    retry(&shared.link.health, "take a claim back", || {
        let mut conn = conn.clone();
        let mut invocation = shared.scripts.unclaim.key(&job);
        invocation
            .key(&index)
            .key(&owned)
            .arg(submission.member)
            .arg(&shared.settings.replica)
            .arg(&run.incarnation)
            .arg(submission.generation)
            .arg(token);
        async move { invocation.invoke_async::<i64>(&mut conn).await }
    })
    .await
    .map(|taken| taken == 1)
}
