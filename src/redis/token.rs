//! [`FencingToken`]: the number a claimed submission carries to fence its own writes.

use std::fmt;

/// The fencing token of a claimed submission
/// ([`RedisMirror::submit`](crate::RedisMirror::submit)): strictly greater than the token of
/// every earlier claimed submission of the same id in the namespace (of any id, in fact: one
/// counter per namespace).
///
/// A claim alone cannot protect a write to another system: a replica that paused past its
/// lease may wake up and write after its claim was given to another replica. Hand the token
/// along with every such write and let the other system refuse a token lower than the last one
/// it accepted (Kleppmann, "How to do distributed locking"). See
/// [`RedisMirror::submit`](crate::RedisMirror::submit) for a database example.
///
/// Tokens are handed out by Redis as max(last + 1, Redis's clock in µs): they survive a Redis
/// restart with AOF or RDB (the counter is kept), and even one that forgot everything, as long
/// as Redis's clock does not step back. They are below 2^53 (exact in JSON and JavaScript).
///
/// # Examples
///
/// ```
/// use background_worker::FencingToken;
///
/// let token = FencingToken::new(1_765_000_000_000_001);
/// assert_eq!(token.get(), 1_765_000_000_000_001);
/// assert!(FencingToken::new(7) > FencingToken::new(6));
/// assert_eq!(token.to_string(), "1765000000000001");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct FencingToken(u64);

impl FencingToken {
    /// A token with the value `value` (for tests, and for tokens read back from a store).
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Its value: store it beside what the task writes, compare it as a number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<FencingToken> for u64 {
    fn from(token: FencingToken) -> Self {
        token.0
    }
}
