//! Timestamps: Unix milliseconds inside, RFC 3339 with milliseconds outside
//! (`2026-04-26T19:33:42.108Z`, as ION's `occurred_at`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return "1970-01-01T00:00:00.000Z".to_string();
    };
    let (h, m, s) = (dt.hour(), dt.minute(), dt.second());
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.millisecond()
    )
}

/// Parses RFC 3339 (any offset) into Unix milliseconds.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(format_ms(1_777_232_022_108), "2026-04-26T19:33:42.108Z");
        assert_eq!(
            parse_rfc3339_ms("2026-04-26T19:33:42.108Z"),
            Some(1_777_232_022_108)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-04-26T21:33:42.108+02:00"),
            Some(1_777_232_022_108)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
