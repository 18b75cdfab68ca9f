//! Cron cadences (feature `cron`), through the `croner` crate, in any IANA time zone of
//! `chrono-tz`.
//!
//! Why croner: of the three crates compared (`croner`, `cron`, `saffron`), croner alone has
//! all of: seconds (optional, so both 5- and 6-field expressions parse), time zones through
//! chrono's `TimeZone` (with ambiguous and skipped local times around DST changes handled),
//! the POSIX/Vixie rule that day-of-month and day-of-week are ORed, `L`, `W` and `#`, errors
//! as values for every bad pattern, and a search both forwards and backwards from an instant
//! (the backward search finds the latest missed tick). `cron` has seconds and time zones but
//! requires 6 or 7 fields and ANDs the day fields; `saffron` has no seconds and no time zones.

use std::fmt;
use std::str::FromStr;

use chrono::TimeZone;
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use super::error::CronError;

/// A parsed cron expression and the time zone it is read in.
#[derive(Debug, Clone)]
pub(crate) struct CronCadence {
    cron: Cron,
    zone: Tz,
    expression: String,
}

impl CronCadence {
    /// Parses `expression` (5 fields, or 6 with seconds first) for the time zone named `zone`.
    pub(crate) fn parse(expression: &str, zone: &str) -> Result<Self, CronError> {
        let zone = Tz::from_str(zone).map_err(|_| CronError::UnknownTimeZone {
            zone: zone.to_owned(),
        })?;
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(expression)
            .map_err(|error| CronError::InvalidExpression {
                expression: expression.to_owned(),
                reason: error.to_string(),
            })?;
        let cadence = Self {
            cron,
            zone,
            expression: expression.trim().to_owned(),
        };
        // An expression that matches no date (`0 0 30 2 *`) parses, but has no tick.
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        if cadence.next_after(now).is_none() {
            return Err(CronError::NoTicks {
                expression: expression.to_owned(),
            });
        }
        Ok(cadence)
    }

    /// The first tick strictly after `ms`. Ticks fall on whole seconds, so the search starts
    /// from `ms` rounded down to its second.
    pub(crate) fn next_after(&self, ms: u64) -> Option<u64> {
        let start = self.at_second(ms)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }

    /// The last tick at or before `ms`.
    pub(crate) fn latest_at_or_before(&self, ms: u64) -> Option<u64> {
        let start = self.at_second(ms)?;
        let latest = self.cron.find_previous_occurrence(&start, true).ok()?;
        u64::try_from(latest.timestamp_millis()).ok()
    }

    fn at_second(&self, ms: u64) -> Option<chrono::DateTime<Tz>> {
        let seconds = i64::try_from(ms / 1000).ok()?;
        self.zone.timestamp_opt(seconds, 0).single()
    }
}

impl fmt::Display for CronCadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron {:?} in {}", self.expression, self.zone.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-29 00:00:00 UTC, the night Europe/Berlin moves from 02:00 CET to 03:00 CEST.
    const MARCH_29: u64 = 1_774_742_400_000;

    #[test]
    fn seconds_are_optional_and_ticks_fall_on_matching_seconds() {
        let every_10s = CronCadence::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(every_10s.next_after(MARCH_29), Some(MARCH_29 + 10_000));
        assert_eq!(every_10s.next_after(MARCH_29 + 9_999), Some(MARCH_29 + 10_000));
        assert_eq!(every_10s.latest_at_or_before(MARCH_29 + 9_999), Some(MARCH_29));
        assert_eq!(
            every_10s.latest_at_or_before(MARCH_29 + 10_000),
            Some(MARCH_29 + 10_000)
        );
        let hourly = CronCadence::parse("0 * * * *", "UTC").unwrap();
        assert_eq!(hourly.next_after(MARCH_29), Some(MARCH_29 + 3_600_000));
        assert_eq!(hourly.to_string(), "cron \"0 * * * *\" in UTC");
    }

    #[test]
    fn time_zones_follow_daylight_saving() {
        // 04:00 local in Berlin: 03:00 UTC before the change (CET), 02:00 UTC after (CEST).
        let berlin = CronCadence::parse("0 0 4 * * *", "Europe/Berlin").unwrap();
        let hour = 3_600_000;
        assert_eq!(
            berlin.next_after(MARCH_29 - 24 * hour),
            Some(MARCH_29 - 24 * hour + 3 * hour)
        );
        assert_eq!(berlin.next_after(MARCH_29), Some(MARCH_29 + 2 * hour));
    }

    #[test]
    fn bad_expressions_and_zones_are_typed_errors() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * *",
            "a b c d e",
            "*/0 * * * *",
        ] {
            assert!(
                matches!(
                    CronCadence::parse(bad, "UTC"),
                    Err(CronError::InvalidExpression { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            CronCadence::parse("* * * * *", "Mars/Olympus").unwrap_err(),
            CronError::UnknownTimeZone {
                zone: "Mars/Olympus".into()
            }
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// The forward and backward searches agree: the tick after `at` is a tick, and no tick
        /// lies between `at` and it.
        #[test]
        fn next_and_latest_agree(at in MARCH_29..MARCH_29 + 400 * 86_400_000, which in 0usize..4) {
            let expression = ["*/7 * * * * *", "0 */5 * * * *", "30 2 * * MON", "0 0 4 * * *"][which];
            let cron = CronCadence::parse(expression, "Europe/Berlin").unwrap();
            let next = cron.next_after(at).unwrap();
            proptest::prop_assert!(next > at);
            proptest::prop_assert_eq!(cron.latest_at_or_before(next), Some(next));
            let before = cron.latest_at_or_before(next - 1).unwrap();
            proptest::prop_assert!(before <= at, "{} > {}", before, at);
            proptest::prop_assert_eq!(cron.next_after(before), Some(next));
        }
    }
}
