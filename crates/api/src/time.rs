//! Times on the wire: RFC 3339 UTC, with milliseconds when there are any
//! (`2026-11-22T12:00:00Z`, `2026-11-22T12:00:00.25Z`), exactly as `time`'s `Rfc3339` writes
//! them. Written by hand because every hold and order view carries two or three, and `time`'s
//! general formatter cost more than the rest of the view; a property test checks both agree.

use serde::{Serialize, Serializer};
use taquilla_domain::Timestamp;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339 as Rfc3339Format;

/// Longest text [`Rfc3339`] writes: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const TEXT_MAX_BYTES: usize = 24;
/// Longest input [`parse_rfc3339`] looks at.
const INPUT_MAX_BYTES: usize = 64;
/// The last millisecond RFC 3339 can express (9999-12-31T23:59:59.999Z).
const MS_MAX: i64 = 253_402_300_799_999;
/// The first (0000-01-01T00:00:00Z).
const MS_MIN: i64 = -62_167_219_200_000;

/// A time as RFC 3339 UTC. Displays and serializes as text; empty outside years 0–9999,
/// which RFC 3339 cannot express (the domain never produces such times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl Rfc3339 {
    /// The text in a stack buffer: the bytes used and the buffer.
    fn encode(self) -> (usize, [u8; TEXT_MAX_BYTES]) {
        const DAY_MS: i64 = 86_400_000;
        let t = self.0.0;
        let mut out = [0u8; TEXT_MAX_BYTES];
        let (days, ms_of_day) = (t.div_euclid(DAY_MS), t.rem_euclid(DAY_MS));
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return (0, out);
        }
        let secs = ms_of_day / 1000;
        let ms = (ms_of_day % 1000) as u32;
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut v = value;
            for i in (0..digits).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year as u32, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, (secs / 3600) as u32, 2);
        put(14, (secs / 60 % 60) as u32, 2);
        put(17, (secs % 60) as u32, 2);
        put(20, ms, 3);
        for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
            out[at] = sep;
        }
        // The fraction without trailing zeros, and none at all for a whole second.
        let len = match ms {
            0 => 19,
            _ if ms.is_multiple_of(100) => 21,
            _ if ms.is_multiple_of(10) => 22,
            _ => 23,
        };
        out[len] = b'Z';
        (len + 1, out)
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (len, buf) = self.encode();
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (len, buf) = self.encode();
        s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
    }
}

impl crate::json::WriteJson for Rfc3339 {
    fn write_json(&self, out: &mut Vec<u8>) {
        let (len, buf) = self.encode();
        out.push(b'"');
        out.extend_from_slice(&buf[..len]);
        out.push(b'"');
    }
}

/// [`Rfc3339`]'s text as a `String`.
pub fn rfc3339(t: Timestamp) -> String {
    Rfc3339(t).to_string()
}

/// Year, month and day of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 time (any offset) into milliseconds since the epoch: any time RFC 3339
/// can write in UTC (years 0000–9999), as JSON Schema's `date-time` takes it.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    if s.len() > INPUT_MAX_BYTES {
        return None;
    }
    let d = OffsetDateTime::parse(s, &Rfc3339Format).ok()?;
    let ms = d.unix_timestamp_nanos() / 1_000_000;
    (i128::from(MS_MIN)..=i128::from(MS_MAX))
        .contains(&ms)
        .then_some(Timestamp(ms as i64))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The formatter this module replaces: `time`'s RFC 3339.
    fn oracle(t: Timestamp) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(t.0 as i128 * 1_000_000)
            .ok()
            .and_then(|d| d.format(&Rfc3339Format).ok())
            .unwrap_or_default()
    }

    #[test]
    fn edges_match_the_time_crate() {
        let year_10000 = MS_MAX + 1;
        let year_0 = MS_MIN;
        for ms in [
            0,
            1,
            10,
            100,
            999,
            -1,
            -86_400_000,
            951_782_400_000,   // 2000-02-29
            4_107_542_399_999, // 2100-02-28T23:59:59.999
            year_10000 - 1,
            year_10000,
            year_0,
            year_0 - 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(rfc3339(Timestamp(ms)), oracle(Timestamp(ms)), "{ms} ms");
        }
        assert_eq!(rfc3339(Timestamp(1_700_000_000_120)), "2023-11-14T22:13:20.12Z");
    }

    #[test]
    fn serializes_as_its_text() {
        let t = Timestamp(1_700_000_000_120);
        assert_eq!(
            serde_json::to_string(&Rfc3339(t)).unwrap(),
            format!("\"{}\"", rfc3339(t))
        );
    }

    #[test]
    fn parses_what_it_writes_and_refuses_the_rest() {
        for ms in [0, 1_700_000_000_120, MS_MAX] {
            assert_eq!(parse_rfc3339(&rfc3339(Timestamp(ms))), Some(Timestamp(ms)));
        }
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00+01:00"),
            Some(Timestamp(1_767_225_600_000))
        );
        // Any year RFC 3339 can write, as JSON Schema's date-time takes it.
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00Z"), Some(Timestamp(MS_MIN)));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Some(Timestamp(-1)));
        for junk in ["", "yesterday", "10000-01-01T00:00:00Z", &"9".repeat(65)] {
            assert_eq!(parse_rfc3339(junk), None, "{junk}");
        }
    }

    proptest! {
        #[test]
        fn matches_the_time_crate(ms in -70_000_000_000_000i64..260_000_000_000_000) {
            prop_assert_eq!(rfc3339(Timestamp(ms)), oracle(Timestamp(ms)));
        }

        #[test]
        fn matches_on_whole_and_round_fractions(secs in 0i64..253_402_300_800, frac in prop::sample::select(vec![0i64, 100, 500, 10, 250])) {
            let t = Timestamp(secs * 1000 + frac);
            prop_assert_eq!(rfc3339(t), oracle(t));
        }
    }
}
