//! One Redis call as the mirror makes it: retried when the connection broke, its outcome noted
//! in the health.

use std::future::Future;
use std::time::Duration;

use redis::{RedisError, RedisResult};

use crate::redis::conn::is_cluster_unsettled;
use crate::redis::health::HealthCell;

/// Whether `error` is about the connection or the cluster's topology (worth a retry, and a sign
/// of trouble for health), rather than about the command.
pub(crate) fn is_connection(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
        || is_cluster_unsettled(error)
}

/// Runs `command`, each attempt bounded by the health's call timeout, and retries it twice if
/// the connection broke or the attempt timed out. Every failed attempt is noted in `health` at
/// once (so `degraded` shows from the first one); a success clears it.
pub(crate) async fn retry<T, F, Fut>(health: &HealthCell, what: &str, mut command: F) -> RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    let mut attempt = 0;
    loop {
        match bounded(health.call_timeout, command()).await {
            Ok(value) => {
                health.ok();
                return Ok(value);
            }
            Err(error) if is_connection(&error) => {
                health.error(what, &error);
                if attempt == 2 {
                    return Err(error);
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(error) => {
                health.ok();
                return Err(error);
            }
        }
    }
}

/// `call` within `timeout`; a timeout is an I/O error (a connection error).
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("redis did not answer within {timeout:?}"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, RedisError, ServerErrorKind};

    use super::is_connection;

    fn server(kind: ServerErrorKind) -> RedisError {
        RedisError::from((ErrorKind::Server(kind), "from the server"))
    }

    /// A cluster that answers only redirects or "down" is a connection problem: retried, and
    /// health is not `connected` while every call gets one.
    #[test]
    fn a_moving_cluster_is_a_connection_error() {
        for kind in [
            ServerErrorKind::Moved,
            ServerErrorKind::Ask,
            ServerErrorKind::TryAgain,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ReadOnly,
            ServerErrorKind::BusyLoading,
        ] {
            assert!(is_connection(&server(kind)), "{kind:?}");
        }
        let no_node = RedisError::from((ErrorKind::ClusterConnectionNotFound, "no node for the slot"));
        assert!(is_connection(&no_node));
        // A command the server refuses is not.
        assert!(!is_connection(&server(ServerErrorKind::ResponseError)));
        assert!(!is_connection(&server(ServerErrorKind::NoScript)));
    }
}
