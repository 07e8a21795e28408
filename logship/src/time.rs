//! Time as the pipeline reads and writes it: milliseconds since the epoch, RFC 3339
//! text (written into every text event, read from apps' timestamp fields), epoch
//! numbers whose unit is not known, and the calendar maths under them.
//!
//! What apps write reaches [`parse_rfc3339_ms`] and `epoch_number_ms`: both check
//! every field's range before any arithmetic, so any input gives a time or `None`,
//! never a panic or an overflow.
//!
//! Not here: which of a line's timestamps an event gets and how far from now it may be
//! (`structure`), the 24 h that one batch may span (`batch`).

use std::time::{SystemTime, UNIX_EPOCH};

/// The latest time [`parse_rfc3339_ms`] and [`push_rfc3339`] handle,
/// 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit years, and every time in range
/// is far from `i64` overflow in milliseconds.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Appends `2026-11-22T10:30:00.123Z`. A time outside 1970..=9999 (never a receive
/// time) is clamped into it, so the text is always RFC 3339 that
/// [`parse_rfc3339_ms`] reads back.
pub fn push_rfc3339(out: &mut String, ms: i64) {
    let ms = ms.clamp(0, MAX_TIME_MS);
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Written by hand rather than with `write!`: once per text event, and the
    // formatting machinery cost more than the rest of the event's structuring. Every
    // field is in range after the clamp (years 1970..=9999).
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, n: i64| {
        let mut n = n;
        for k in (at..at + width).rev() {
            buf[k] = b'0' + n.rem_euclid(10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 3, millis);
    // Digits and ASCII punctuation only: always UTF-8.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// [`push_rfc3339`] for a writer of many times close together (a text event per line,
/// most within the same second): the date and the time of day are worked out once per
/// second, then only the milliseconds change. Writes exactly what `push_rfc3339` writes.
#[derive(Debug, Clone, Default)]
pub struct Rfc3339Writer {
    /// The second (since the epoch, clamped) that `text` holds, once one was written.
    second: Option<i64>,
    /// That second as `push_rfc3339` writes it, milliseconds included (as text: it is
    /// written as it is, never checked again as UTF-8).
    text: String,
}

/// Where the milliseconds start in every time [`push_rfc3339`] writes
/// (`2026-11-22T10:30:00.123Z`).
const MILLIS_AT: usize = 20;

impl Rfc3339Writer {
    pub fn push(&mut self, out: &mut String, ms: i64) {
        let ms = ms.clamp(0, MAX_TIME_MS);
        let second = ms.div_euclid(1000);
        if self.second != Some(second) {
            self.text.clear();
            push_rfc3339(&mut self.text, ms);
            self.second = Some(second);
        }
        // Digits and ASCII punctuation only: every index is a char boundary.
        let (Some(before), Some(after)) =
            (self.text.get(..MILLIS_AT), self.text.get(MILLIS_AT + 3..))
        else {
            // Never (the length is fixed), but then nothing is cached.
            self.second = None;
            push_rfc3339(out, ms);
            return;
        };
        let millis = ms.rem_euclid(1000);
        out.push_str(before);
        for unit in [100, 10, 1] {
            out.push(char::from(b'0' + (millis / unit % 10) as u8));
        }
        out.push_str(after);
    }
}

/// Parses RFC 3339 / ISO 8601 date-times (`T` or space, fraction optional, `Z` or
/// `±HH:MM`/`±HHMM`); a time without zone is taken as UTC. Works on bytes only and
/// checks every field's range (years 0000–9999, the day within its month, offsets
/// up to ±23:59), so any text gives a time or `None`, never a panic or an overflow.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    // `YYYY-MM-DDTHH:MM:SS`, read from one array of that size: no length checked and
    // no closure called per field.
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    if head[4] != b'-'
        || head[7] != b'-'
        || !matches!(head[10], b'T' | b't' | b' ')
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let digit = |i: usize| {
        let d = head[i].wrapping_sub(b'0');
        (d < 10).then_some(i64::from(d))
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let y = two(0)? * 100 + two(2)?;
    let (mo, d) = (two(5)?, two(8)?);
    let (h, mi, se) = (two(11)?, two(14)?, two(17)?);
    // `se` 60: a leap second, as RFC 3339 allows.
    if !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i, b".,") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let fraction = b.get(start..i)?;
        if fraction.is_empty() {
            return None;
        }
        // The first three digits, padded: ".5" is 500 ms, ".123456" 123 ms.
        for k in 0..3 {
            millis = millis * 10 + fraction.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
    }
    let offset_s = match b.get(i..)? {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    // Every field is range-checked above: the sum stays within ±400,000 years of
    // milliseconds, far from i64's limits.
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + millis)
}

/// The value of ASCII decimal digits (at most 4 here); `None` if any byte is not one.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

/// Days in month `m` (1–12) of year `y`, proleptic Gregorian.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
/// Callers pass a checked date (year 0–9999), so no step can overflow.
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
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Epoch seconds or milliseconds (or micro/nanoseconds), told apart by magnitude.
/// Anything not finite, not positive, or past [`MAX_TIME_MS`] is no timestamp.
pub(crate) fn epoch_number_ms(n: f64) -> Option<i64> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    // Checked in f64 before the cast: `as` would saturate 1e300 to i64::MAX, a
    // "timestamp" that overflows the first sum it takes part in.
    (ms <= MAX_TIME_MS as f64).then_some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_writer_writes_what_push_rfc3339_writes() {
        let mut writer = Rfc3339Writer::default();
        let times = [
            1_795_000_000_000,
            1_795_000_000_001,
            1_795_000_000_999,
            1_795_000_001_000,
            1_795_000_000_500,
            0,
            -1,
            i64::MIN,
            MAX_TIME_MS,
            MAX_TIME_MS + 1,
            i64::MAX,
            86_399_999,
            86_400_000,
        ];
        for ms in times
            .into_iter()
            .chain((0..3_000).map(|k| 1_795_000_000_000 + k * 7))
        {
            let (mut cached, mut direct) = (String::new(), String::new());
            writer.push(&mut cached, ms);
            push_rfc3339(&mut direct, ms);
            assert_eq!(cached, direct, "{ms}");
        }
    }

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        let mut s = String::new();
        push_rfc3339(&mut s, NOW + 123);
        assert_eq!(parse_rfc3339_ms(&s), Some(NOW + 123));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_rfc3339_ms("2026-02-30Tnope"), None);
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00Z"),
            Some(951_868_800_000)
        );
    }

    #[test]
    fn rfc3339_rejects_impossible_dates_and_bad_offsets() {
        for s in [
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+05:60",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zjunk",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+5:00",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
        assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339_ms("2000-02-29T00:00:00Z").is_some());
        assert_eq!(parse_rfc3339_ms("1900-02-29T00:00:00Z"), None);
        assert_eq!(
            parse_rfc3339_ms("1970-01-01T05:30:00+0530"),
            Some(0),
            "an offset without colon"
        );
        assert_eq!(
            parse_rfc3339_ms("1970-01-01t00:00:00.123456789z"),
            Some(123)
        );
        assert_eq!(
            parse_rfc3339_ms("9999-12-31T23:59:59.999Z"),
            Some(MAX_TIME_MS)
        );
    }

    #[test]
    fn times_outside_the_years_rfc3339_can_write_are_clamped() {
        for (ms, expect) in [
            (i64::MIN, "1970-01-01T00:00:00.000Z"),
            (-1, "1970-01-01T00:00:00.000Z"),
            (i64::MAX, "9999-12-31T23:59:59.999Z"),
        ] {
            let mut s = String::new();
            push_rfc3339(&mut s, ms);
            assert_eq!(s, expect);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_parses_or_not_without_panic(s in "(?s).{0,40}") {
                let _ = parse_rfc3339_ms(&s);
            }

            #[test]
            fn near_dates_parse_or_not_without_panic(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9é]{0,4})?([Zz]|[+-][0-9é]{2}:?[0-9]{2})?.{0,2}") {
                if let Some(ms) = parse_rfc3339_ms(&s) {
                    // Within 0000..=9999 and its offsets.
                    prop_assert!((-62_200_000_000_000..=MAX_TIME_MS + 86_400_000).contains(&ms));
                }
            }

            #[test]
            fn rfc3339_round_trips(ms in 0..=MAX_TIME_MS) {
                let mut s = String::new();
                push_rfc3339(&mut s, ms);
                prop_assert_eq!(parse_rfc3339_ms(&s), Some(ms), "{}", s);
            }

            #[test]
            fn any_epoch_number_is_checked(n: f64) {
                if let Some(ms) = epoch_number_ms(n) {
                    prop_assert!((0..=MAX_TIME_MS).contains(&ms));
                }
            }
        }
    }
}
