//! [`ClusterError`]: why a cluster query, cancel or close failed.

use std::time::Duration;

use thiserror::Error;

/// Why a [`RedisMirror`](crate::RedisMirror) query, cancel or close failed. The local worker
/// is never affected: its own statuses stay available through [`Worker`](crate::Worker).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[non_exhaustive]
pub enum ClusterError {
    /// A setting given to [`MirrorBuilder`](crate::MirrorBuilder) is not usable (a bad URL,
    /// namespace or replica name).
    #[error("invalid mirror setting: {reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// Redis answered with an error, or the connection failed.
    #[error("redis error: {message}")]
    Redis {
        /// The client's error message (never the password).
        message: String,
    },
    /// Redis did not answer in time.
    #[error("redis did not answer within {timeout:?}")]
    Timeout {
        /// The bound that passed.
        timeout: Duration,
    },
    /// A record in Redis is not one this crate wrote (a missing or unparsable field): the data
    /// was changed by someone else, or a newer version wrote it.
    #[error("malformed record for job {id:?}: {reason}")]
    Malformed {
        /// The job's id.
        id: String,
        /// What is wrong with the record.
        reason: String,
    },
    /// No record of the job, but Redis began serving its current data (a restart, a flush, a
    /// failover) less than a lease ago: the replicas may not have written it again yet. Not
    /// "not found": ask again after `retry_after`.
    #[error("job {id:?} is not known yet: redis began serving its current data less than a lease ago (ask again in {retry_after:?})")]
    NotKnownYet {
        /// The job's id.
        id: String,
        /// When to ask again: the rest of the grace.
        retry_after: Duration,
    },
    /// [`RedisMirror::start`](crate::RedisMirror::start) was not called yet.
    #[error("the mirror is not started")]
    NotStarted,
    /// [`RedisMirror::close`](crate::RedisMirror::close) timed out with transitions still
    /// unwritten; the replica's jobs will be reported lost once its lease expires.
    #[error("the mirror could not flush within {timeout:?} ({unwritten} transitions unwritten)")]
    Unflushed {
        /// The close timeout.
        timeout: Duration,
        /// Transitions still queued.
        unwritten: usize,
    },
}

impl From<redis::RedisError> for ClusterError {
    fn from(error: redis::RedisError) -> Self {
        Self::Redis {
            message: error.to_string(),
        }
    }
}

/// Why [`RedisMirror::submit`](crate::RedisMirror::submit) or
/// [`RedisMirror::submit_with_context`](crate::RedisMirror::submit_with_context) refused a
/// claimed submission.
///
/// Whenever a claimed submission is refused, its closure is dropped without being called: the
/// task never runs, here or anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[non_exhaustive]
pub enum ClaimError {
    /// A job with this id is pending or running on a live run of `replica` (this one or
    /// another): the claim is held. Submit again once it is terminal or `lost`.
    #[error("job {id:?} is already pending or running on replica {replica:?}")]
    Held {
        /// The id that was refused.
        id: String,
        /// The replica that holds it.
        replica: String,
        /// The holder's fencing token (`None` for a plain, unclaimed submission there).
        fencing_token: Option<u64>,
    },
    /// Redis could not be reached, or did not answer within the
    /// [query timeout](crate::MirrorBuilder::query_timeout): nothing was claimed for sure and
    /// nothing runs. A claim that Redis took while its answer was lost is freed by the next
    /// re-sync (it reads `lost`).
    #[error("job {id:?} was not claimed: redis is unavailable ({reason})")]
    Unavailable {
        /// The id that was refused.
        id: String,
        /// What failed (never the password).
        reason: String,
    },
    /// Redis began serving its current data (a restart, a flush, a failover, or the
    /// namespace's first use) less than a lease ago, and holds no live claim of this id: one
    /// may be about to be written again by its owner, so none is granted yet. Ask again after
    /// `retry_after`.
    #[error("job {id:?} was not claimed: redis began serving its current data less than a lease ago (ask again in {retry_after:?})")]
    NotKnownYet {
        /// The id that was refused.
        id: String,
        /// The rest of the grace.
        retry_after: Duration,
    },
    /// The local worker refused the task after the claim (the claim was taken back).
    #[error(transparent)]
    Submit(#[from] crate::error::SubmitError),
    /// The claim was refused for a reason that is not about the id being taken: this
    /// replica's run was found dead meanwhile (a new one begins: submit again), or the record
    /// under the id's key holds another id.
    #[error("job {id:?} was not claimed: {reason}")]
    Refused {
        /// The id that was refused.
        id: String,
        /// Why.
        reason: String,
    },
    /// [`RedisMirror::start`](crate::RedisMirror::start) was not called yet.
    #[error("the mirror is not started")]
    NotStarted,
}

impl ClaimError {
    /// The id of the submission that was refused (`""` for
    /// [`NotStarted`](ClaimError::NotStarted)).
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Held { id, .. }
            | Self::Unavailable { id, .. }
            | Self::NotKnownYet { id, .. }
            | Self::Refused { id, .. } => id,
            Self::Submit(error) => error.id(),
            Self::NotStarted => "",
        }
    }
}
