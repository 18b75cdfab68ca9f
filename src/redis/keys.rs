//! The key layout of one namespace. Every key starts with the hash tag `{ns}`, so all of a
//! namespace's keys live in one Redis Cluster slot and every script may touch any of them.
//!
//! Ids and replica names are data: they never appear in a key as they are. A job's key ends in
//! the SHA-1 of its id (hex), a replica's in the SHA-1 of its name; the id and the name are
//! stored inside the records and checked on every write and read, so even a SHA-1 collision
//! cannot make one job's writes or lookups reach another job's record.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// The SHA-1 of `data` in lowercase hex (40 characters).
pub(crate) fn digest(data: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Hex by hand: the writer hashes every id it writes, and `Display` goes through the
    // formatting machinery a byte at a time.
    let mut out = String::with_capacity(40);
    for byte in sha1_smol::Sha1::from(data).digest().bytes() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// A fresh random token (16 hex digits) naming one run of one replica.
pub(crate) fn incarnation() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Whether `namespace` can be a hash tag: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub(crate) fn valid_namespace(namespace: &str) -> bool {
    (1..=64).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The keys of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `{ns}:`
    prefix: String,
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            prefix: format!("{{{namespace}}}:"),
        }
    }

    /// `{ns}:`: every key's prefix (the read script names a record's lease and dead keys with
    /// it).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{ns}:epoch`: when Redis began serving its current data (see `scripts/includes/run.lua`).
    pub(crate) fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    /// `{ns}:dead:<sha1(name)>:<incarnation>`: present once that run was found dead (final).
    pub(crate) fn dead(&self, replica_hash: &str, incarnation: &str) -> String {
        format!("{}dead:{replica_hash}:{incarnation}", self.prefix)
    }

    /// `{ns}:job:<sha1(id)>`: the job's record, a hash.
    pub(crate) fn job(&self, id_hash: &str) -> String {
        // Concatenated rather than `format!`: one per update written.
        let mut key = String::with_capacity(self.prefix.len() + 4 + id_hash.len());
        key.push_str(&self.prefix);
        key.push_str("job:");
        key.push_str(id_hash);
        key
    }

    /// `{ns}:fence`: the last fencing token handed out in the namespace (`scripts/claim.lua`).
    pub(crate) fn fence(&self) -> String {
        format!("{}fence", self.prefix)
    }

    /// `{ns}:jobs`: every job's id hash, scored by submission time (ms): the listing.
    pub(crate) fn index(&self) -> String {
        format!("{}jobs", self.prefix)
    }

    /// `{ns}:expiry`: finished jobs' id hashes, scored by when their record expires (ms, Redis
    /// clock); the trimmer drops index entries past it.
    pub(crate) fn expiry(&self) -> String {
        format!("{}expiry", self.prefix)
    }

    /// `{ns}:replicas`: a hash of `<sha1(name)>:<incarnation>` to the replica's name, for every
    /// replica run that may still own unfinished jobs.
    pub(crate) fn replicas(&self) -> String {
        format!("{}replicas", self.prefix)
    }

    /// `{ns}:lease:<sha1(name)>`: the replica's lease, holding its incarnation, with a TTL.
    pub(crate) fn lease(&self, replica_hash: &str) -> String {
        format!("{}lease:{replica_hash}", self.prefix)
    }

    /// `{ns}:seen:<sha1(name)>`: the epoch (its counter `n`) the replica's lease was last renewed
    /// under, with the lease's TTL.
    pub(crate) fn seen(&self, replica_hash: &str) -> String {
        format!("{}seen:{replica_hash}", self.prefix)
    }

    /// `{ns}:owned:<sha1(name)>:<incarnation>`: the id hashes of that run's unfinished jobs.
    pub(crate) fn owned(&self, replica_hash: &str, incarnation: &str) -> String {
        format!("{}owned:{replica_hash}:{incarnation}", self.prefix)
    }

    /// `{ns}:cancel:<sha1(name)>:<incarnation>`: that run's stored cancel requests (a hash of
    /// id hash to `<generation>:<id>`), and the name of its pub/sub channel.
    /// The channel `write.lua` publishes every written status change on.
    pub(crate) fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    pub(crate) fn cancels(&self, replica_hash: &str, incarnation: &str) -> String {
        format!("{}cancel:{replica_hash}:{incarnation}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_reach_the_key_layout() {
        let keys = Keys::new("ns");
        let hostile = ["a:b", "*", "{x}", "a b", "line\nbreak", &"x".repeat(65_536)];
        let mut seen = std::collections::HashSet::new();
        for id in hostile {
            let key = keys.job(&digest(id));
            assert_eq!(key.len(), "{ns}:job:".len() + 40, "{key}");
            assert!(key.starts_with("{ns}:job:"));
            assert!(seen.insert(key));
        }
        // The SHA-1 of "a", as the scripts and `redis-cli` name it.
        assert_eq!(digest("a"), "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
        assert!(valid_namespace("jobs-1.a_b"));
        assert!(!valid_namespace("a{b"));
        assert!(!valid_namespace(""));
        assert_ne!(incarnation(), incarnation());
    }
}
