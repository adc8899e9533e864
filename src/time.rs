//! Instants as Proxmox and NetBox write them: Proxmox gives UNIX epoch
//! seconds (`ctime`, `snaptime`, `starttime`), NetBox ISO 8601 date-times
//! (`2026-07-20T01:00:02Z`, or with an offset and fractions, depending on its
//! time zone). The core has no clock: these only convert.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-07-20T01:00:02Z`: how NetBox (in UTC) returns a date-time.
pub fn iso_from_epoch(seconds: i64) -> String {
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn digits(text: &str, from: usize, len: usize) -> Option<i64> {
    let part = text.get(from..from + len)?;
    part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
}

/// Epoch seconds of an ISO 8601 date-time (`T` or a space between date and
/// time; fractions dropped; `Z`, `±HH:MM` or nothing, read as UTC).
pub fn epoch_from_iso(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 19 || separators.iter().any(|(at, sep)| bytes.get(*at) != Some(sep)) {
        return None;
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (year, month, day) = (digits(text, 0, 4)?, digits(text, 5, 2)?, digits(text, 8, 2)?);
    let (hour, minute, second) = (digits(text, 11, 2)?, digits(text, 14, 2)?, digits(text, 17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction.find(|c: char| !c.is_ascii_digit()).unwrap_or(fraction.len());
        rest = fraction.get(end..)?;
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let zone = zone.get(1..)?.replace(':', "");
            if zone.len() != 4 {
                return None;
            }
            sign * (digits(&zone, 0, 2)? * 3600 + digits(&zone, 2, 2)? * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_and_iso_text_round_trip() {
        for (epoch, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_784_509_202, "2026-07-20T01:00:02Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ] {
            assert_eq!(iso_from_epoch(epoch), text);
            assert_eq!(epoch_from_iso(text), Some(epoch), "{text}");
        }
    }

    #[test]
    fn offsets_fractions_and_spaces_are_read() {
        let utc = epoch_from_iso("2026-07-20T01:00:02Z");
        for text in [
            "2026-07-20T03:00:02+02:00",
            "2026-07-20T01:00:02.123456Z",
            "2026-07-19T20:00:02.5-05:00",
            "2026-07-20 01:00:02",
            "2026-07-20T01:00:02+0000",
        ] {
            assert_eq!(epoch_from_iso(text), utc, "{text}");
        }
        for bad in [
            "",
            "2026-07-20",
            "2026-13-20T01:00:02Z",
            "2026-07-20T01:00:02 Z",
            "20260720T010002Z",
            "x",
        ] {
            assert_eq!(epoch_from_iso(bad), None, "{bad}");
        }
    }
}
