//! A task's id as a slot stores it: short ids (UUIDs included) inline, longer ones on the heap.

use std::fmt;

/// Ids up to this many bytes live inside the slot: a status lookup then reads the id it compares
/// and the status it returns from the same allocation, and `submit` allocates nothing for the id.
/// 38 bytes hold a UUID (36) with room to spare, and keep the type at 40 bytes.
const INLINE: usize = 38;

/// A non-empty task id.
pub(crate) enum TaskId {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl TaskId {
    pub(crate) fn new(id: String) -> Self {
        if id.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            // `len` fits: INLINE < 256.
            Self::Inline {
                len: id.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(id.into_boxed_str())
        }
    }

    /// The id's bytes: what the registry hashes and compares, with no UTF-8 check.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(id) => id.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `str`, so they are valid UTF-8: the check never fails
            // (and on a short ASCII id it is a few instructions).
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Heap(id) => id,
        }
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_ids_read_back_unchanged() {
        for id in [
            "a",
            "job-0000042",
            "0b8f1d2c-5a7e-4f0e-9c8b-2d1f3e4a5b6c",
            "ü€𝄞 multibyte",
        ] {
            assert_eq!(TaskId::new(id.to_owned()).as_str(), id);
            assert!(matches!(TaskId::new(id.to_owned()), TaskId::Inline { .. }));
        }
        let long = "x".repeat(INLINE + 1);
        assert_eq!(TaskId::new(long.clone()).as_str(), long);
        assert!(matches!(TaskId::new(long), TaskId::Heap(_)));
        let exact = "y".repeat(INLINE);
        assert_eq!(TaskId::new(exact.clone()).as_str(), exact);
    }

    #[test]
    fn an_id_takes_forty_bytes() {
        assert_eq!(std::mem::size_of::<TaskId>(), 40);
    }
}
