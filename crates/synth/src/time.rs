//! RFC 3339 formatting of unix seconds, for `creationTimestamp` and friends.

/// 2026-06-01T00:00:00Z: the synthetic cluster's birth; objects are created after it.
pub(crate) const CLUSTER_CREATED: i64 = 1_780_272_000;
/// 2026-11-23T01:00:00Z: when the synthetic bundle claims to have been collected.
pub(crate) const COLLECTED_AT: i64 = 1_795_395_600;

/// `YYYY-MM-DDTHH:MM:SSZ` of unix seconds (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(CLUSTER_CREATED), "2026-06-01T00:00:00Z");
        assert_eq!(rfc3339(COLLECTED_AT), "2026-11-23T01:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_396_209), "2026-11-23T01:10:09Z");
    }
}
