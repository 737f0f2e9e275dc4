//! RFC 3339 UTC timestamps for the manifest (`2026-11-23T01:10:09Z`), without a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as `YYYY-MM-DDTHH:MM:SS[.mmm]Z`; times before 1970 print as the epoch.
pub(crate) fn rfc3339(t: SystemTime, millis: bool) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 2);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if millis {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:03}Z", since.subsec_millis())
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_round_trips_through_the_bundle_reader() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_396_209_042);
        assert_eq!(rfc3339(t, false), "2026-11-23T01:10:09Z");
        assert_eq!(rfc3339(t, true), "2026-11-23T01:10:09.042Z");
        assert_eq!(rfc3339(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        // Leap day and year ends.
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400), false), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_704_067_199), false), "2023-12-31T23:59:59Z");
        for secs in [0u64, 59, 86_399, 951_782_400, 1_795_396_209, 4_102_444_800] {
            let s = rfc3339(UNIX_EPOCH + Duration::from_secs(secs), false);
            assert_eq!(netsleuth_ingest::bundle::parse_rfc3339(&s), i64::try_from(secs).ok(), "{s}");
        }
    }
}
