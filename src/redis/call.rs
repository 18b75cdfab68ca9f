//! One Redis call as the mirror makes it: retried when the connection broke, its outcome noted
//! in the health.

use std::future::Future;
use std::time::Duration;

use redis::{RedisError, RedisResult};

use crate::redis::health::HealthCell;

/// Whether `error` is about the connection (worth a retry, and a sign of trouble for health),
/// rather than about the command.
pub(crate) fn is_connection(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
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
