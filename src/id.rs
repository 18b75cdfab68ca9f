//! A task's id as a slot stores it: short ids (UUIDs included) inline, at the front of the slot
//! beside its state byte; longer ones on the heap.

use std::fmt;

/// Ids up to this many bytes live inside the slot: a status lookup then reads the id it compares
/// and the status it returns from the same allocation, and `submit` allocates nothing for the id.
/// 37 bytes hold a UUID (36), and keep [`ShortId`] at 38 bytes, so that with the slot's two flag
/// bytes before it, it ends where the next field (a pointer) starts.
pub(crate) const INLINE: usize = 37;

/// The inline part of an id: the whole id if it is at most [`INLINE`] bytes long, or nothing (a
/// length of 0: ids are never empty) if the slot keeps it on the heap.
///
/// Byte-aligned, so that a slot can put it right after its state byte: the bytes a lookup reads
/// (the state, the length, a short id's bytes) then start the slot's data, and an id of up to
/// 13 bytes shares one 16-byte block with the state, in one cache line whatever the address the
/// allocator picked (see `Slot`).
#[repr(C)]
pub(crate) struct ShortId {
    len: u8,
    bytes: [u8; INLINE],
}

impl ShortId {
    /// `id`, split the way a slot stores it: inline, or (if it is too long) on the heap, with an
    /// empty inline part.
    pub(crate) fn split(id: String) -> (Self, Option<Box<str>>) {
        let mut bytes = [0; INLINE];
        match bytes.get_mut(..id.len()) {
            Some(front) if !id.is_empty() => {
                front.copy_from_slice(id.as_bytes());
                // `len` fits: INLINE < 256.
                let len = id.len() as u8;
                (Self { len, bytes }, None)
            }
            _ => (Self { len: 0, bytes }, Some(id.into_boxed_str())),
        }
    }

    /// The id's bytes, given what the slot keeps on the heap: what the registry hashes and
    /// compares, with no UTF-8 check.
    #[inline]
    pub(crate) fn as_bytes<'a>(&'a self, long: &'a Option<Box<str>>) -> &'a [u8] {
        match (self.len, long) {
            (0, Some(long)) => long.as_bytes(),
            (len, _) => &self.bytes[..usize::from(len)],
        }
    }

    /// The id, given what the slot keeps on the heap.
    pub(crate) fn as_str<'a>(&'a self, long: &'a Option<Box<str>>) -> &'a str {
        match (self.len, long) {
            (0, Some(long)) => long,
            // The bytes were copied from a `str`, so they are valid UTF-8: the check never fails
            // (and on a short ASCII id it is a few instructions).
            (len, _) => std::str::from_utf8(&self.bytes[..usize::from(len)]).unwrap_or_default(),
        }
    }
}

impl fmt::Debug for ShortId {
    /// The inline id (empty for one kept on the heap, which the slot shows beside it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(&None), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(id: &str) -> (String, bool) {
        let (short, long) = ShortId::split(String::from(id));
        assert_eq!(short.as_bytes(&long), id.as_bytes());
        (short.as_str(&long).to_owned(), long.is_some())
    }

    #[test]
    fn short_and_long_ids_read_back_unchanged() {
        for id in [
            "a",
            "job-0000042",
            "0b8f1d2c-5a7e-4f0e-9c8b-2d1f3e4a5b6c",
            "ü€𝄞 multibyte",
        ] {
            assert_eq!(round_trip(id), (id.to_owned(), false));
        }
        let long = "x".repeat(INLINE + 1);
        assert_eq!(round_trip(&long), (long.clone(), true));
        let exact = "y".repeat(INLINE);
        assert_eq!(round_trip(&exact), (exact.clone(), false));
    }

    #[test]
    fn the_inline_part_takes_thirty_eight_bytes_and_any_address() {
        assert_eq!(std::mem::size_of::<ShortId>(), 38);
        assert_eq!(std::mem::align_of::<ShortId>(), 1);
    }
}
