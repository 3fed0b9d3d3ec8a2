//! UTCTimestamp (`YYYYMMDD-HH:MM:SS.sss`) to and from milliseconds since the epoch,
//! with the civil-calendar conversion written out (no date crate needed for one
//! format).
//!
//! Invariant: `parse(format(ms)) == Some(ms)` for every time from 1970 to 9999.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats milliseconds since the epoch as a FIX UTCTimestamp with milliseconds.
pub fn format(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}{m:02}{d:02}-{h:02}:{mi:02}:{s:02}.{milli:03}")
}

/// Parses `YYYYMMDD-HH:MM:SS` with optional `.sss` (or more fractional digits, cut to
/// milliseconds).
pub fn parse(b: &[u8]) -> Option<i64> {
    if b.len() < 17 || b[8] != b'-' || b[11] != b':' || b[14] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(r)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0')))
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(12..14)?, num(15..17)?);
    let ms = match b.len() {
        17 => 0,
        n if n >= 19 && b[17] == b'.' => {
            let frac = &b[18..];
            if !frac.iter().all(u8::is_ascii_digit) || frac.len() > 9 {
                return None;
            }
            frac.iter()
                .chain(std::iter::repeat(&b'0'))
                .take(3)
                .fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'))
        }
        _ => return None,
    };
    let ok = (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61;
    ok.then(|| (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(format(0), "19700101-00:00:00.000");
        // 2025-10-10 21:15:00 UTC = 1760130900 s
        assert_eq!(format(1_760_130_900_123), "20251010-21:15:00.123");
        assert_eq!(parse(b"20251010-21:15:00.123"), Some(1_760_130_900_123));
        assert_eq!(parse(b"20251010-21:15:00"), Some(1_760_130_900_000));
        assert_eq!(parse(b"20240229-00:00:00.5"), Some(1_709_164_800_500));
        assert_eq!(parse(b"2025101-21:15:00"), None);
        assert_eq!(parse(b"20251310-21:15:00"), None);
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(ms in 0i64..253_402_300_799_999) {
            prop_assert_eq!(parse(format(ms).as_bytes()), Some(ms));
        }
    }
}
