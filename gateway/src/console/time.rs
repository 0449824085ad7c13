//! Times as the console shows them: RFC 3339 with a relative hint.

use crate::timefmt::format_ms;

/// `2026-12-06T17:00:00.000Z (3 min ago)`, or `… (in 20 s)` for the future.
pub(crate) fn when(ms: i64, now: i64) -> String {
    let delta = (now - ms) / 1000;
    let (n, future) = if delta >= 0 {
        (delta, false)
    } else {
        (-delta, true)
    };
    let span = match n {
        0..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if future {
        format!("{} (in {span})", format_ms(ms))
    } else {
        format!("{} ({span} ago)", format_ms(ms))
    }
}

/// A short age: `45 s`, `3 min`, `2 h`.
pub(crate) fn age(ms: i64, now: i64) -> String {
    let n = ((now - ms) / 1000).max(0);
    match n {
        0..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    }
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
