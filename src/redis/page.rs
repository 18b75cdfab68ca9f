//! [`Page`] and [`PageCursor`]: the paged listing of a namespace's jobs.

use std::fmt;
use std::str::FromStr;

use crate::redis::job::ClusterJob;

/// One page of [`RedisMirror::jobs`](crate::RedisMirror::jobs) (oldest submission first) or
/// [`RedisMirror::jobs_newest_first`](crate::RedisMirror::jobs_newest_first).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[non_exhaustive]
pub struct Page {
    /// The jobs on this page.
    pub jobs: Vec<ClusterJob>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

/// Where a page of [`RedisMirror::jobs`](crate::RedisMirror::jobs) or
/// [`RedisMirror::jobs_newest_first`](crate::RedisMirror::jobs_newest_first) ends: a point in
/// the index (submission time, then id hash). It survives trimming: the next page starts after
/// the last job seen, in the page's order, whether or not that job's record is still there.
///
/// It prints as `<score>-<hash>` and parses back from that, for an HTTP `?after=` parameter.
///
/// ```
/// use background_worker::PageCursor;
///
/// let cursor: PageCursor = "1700000000000-0a4d55a8d778e5022fab701977c5d840bbc486d0".parse().unwrap();
/// assert_eq!(cursor.to_string().parse::<PageCursor>(), Ok(cursor));
/// assert!("nonsense".parse::<PageCursor>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct PageCursor {
    /// The last job's submission time (ms), its index score.
    pub(crate) score: u64,
    /// The last job's id hash.
    pub(crate) member: String,
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.score, self.member)
    }
}

/// A string that is not a [`PageCursor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a page cursor")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct InvalidCursor;

impl FromStr for PageCursor {
    type Err = InvalidCursor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (score, member) = text.split_once('-').ok_or(InvalidCursor)?;
        let score = score.parse().map_err(|_| InvalidCursor)?;
        if member.len() != 40 || !member.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidCursor);
        }
        Ok(Self {
            score,
            member: member.to_ascii_lowercase(),
        })
    }
}
