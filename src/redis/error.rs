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
