//! Times as the console shows them: RFC 3339 with a relative hint.

use crate::timefmt::format_ms;

/// `45 s`, `3 min`, `2 h`, `4 d` for a number of seconds.
fn span(secs: i64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

/// `2026-12-06T17:00:00.000Z (3 min ago)`, or `… (in 20 s)` for the future.
pub(crate) fn when(ms: i64, now: i64) -> String {
    let delta = (now - ms) / 1000;
    if delta >= 0 {
        format!("{} ({} ago)", format_ms(ms), span(delta))
    } else {
        format!("{} (in {})", format_ms(ms), span(-delta))
    }
}

/// A short age: `45 s`, `3 min`, `2 h` (never negative).
pub(crate) fn age(ms: i64, now: i64) -> String {
    span(((now - ms) / 1000).max(0))
}

#[cfg(test)]
mod tests {
    use super::{age, when};

    #[test]
    fn relative_times_read_naturally() {
        let now = 1_800_000_000_000;
        assert!(when(now - 180_000, now).ends_with("(3 min ago)"));
        assert!(when(now + 20_000, now).ends_with("(in 20 s)"));
        assert_eq!(age(now - 7_200_000, now), "2 h");
        assert_eq!(age(now + 5, now), "0 s");
    }
}
