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

/// Runs `command` and retries it twice if the connection broke, noting the outcome in `health`.
pub(crate) async fn retry<T, F, Fut>(health: &HealthCell, what: &str, mut command: F) -> RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    let mut attempt = 0;
    loop {
        match command().await {
            Ok(value) => {
                health.ok();
                return Ok(value);
            }
            Err(error) if is_connection(&error) => {
                if attempt == 2 {
                    health.error(what, &error);
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
