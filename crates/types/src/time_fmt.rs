//! Times are stored as Unix milliseconds and sent as RFC 3339 UTC strings.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

/// `2026-01-02T03:04:05.678Z`.
pub fn format_rfc3339(unix_ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let ms = dt.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms
    )
}

/// Parses any RFC 3339 time into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = format_rfc3339(1_767_323_045_678);
        assert_eq!(s, "2026-01-02T03:04:05.678Z");
        assert_eq!(parse_rfc3339(&s), Some(1_767_323_045_678));
        assert_eq!(
            parse_rfc3339("2026-01-02T04:04:05.678+01:00"),
            Some(1_767_323_045_678)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
