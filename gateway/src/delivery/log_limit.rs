//! Warnings that repeat once per delivery (a refused destination, a plugin
//! that does not load) are logged at most once per receiver and kind per
//! interval, with the number of repeats left out, so a burst of a thousand
//! events gives one line rather than thousands.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::ReceiverId;

/// How often one (receiver, kind) may log.
pub(crate) const INTERVAL: Duration = Duration::from_secs(60);

/// A rate limit on repeated warnings.
#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    seen: Mutex<HashMap<(ReceiverId, &'static str), Window>>,
}

#[derive(Debug)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// Logs `message` as a warning about `receiver`, unless the same kind
    /// was logged for it within [`INTERVAL`]; then only counts it. Returns
    /// whether a line was written.
    pub(crate) fn warn(&self, receiver: ReceiverId, kind: &'static str, message: &str) -> bool {
        let Some(suppressed) = self.admit(receiver, kind, Instant::now()) else {
            return false;
        };
        if suppressed > 0 {
            tracing::warn!(
                receiver = %receiver,
                kind,
                repeated = suppressed,
                "{message} (and {suppressed} more like it since the last line)"
            );
        } else {
            tracing::warn!(receiver = %receiver, kind, "{message}");
        }
        true
    }

    /// Whether a line may be written at `now`: `Some(repeats left out since
    /// the last one)`, or `None` to stay quiet.
    fn admit(&self, receiver: ReceiverId, kind: &'static str, now: Instant) -> Option<u64> {
        let Ok(mut seen) = self.seen.lock() else {
            return Some(0);
        };
        if seen.len() > 10_000 {
            seen.retain(|_, w| now.duration_since(w.logged_at) < INTERVAL);
        }
        match seen.get_mut(&(receiver, kind)) {
            Some(w) if now.duration_since(w.logged_at) < INTERVAL => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let suppressed = w.suppressed;
                *w = Window {
                    logged_at: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                seen.insert(
                    (receiver, kind),
                    Window {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_same_warning_gives_one_line_per_interval() {
        let limiter = LogLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.admit(ReceiverId(1), "refused", start), Some(0));
        for _ in 0..999 {
            assert_eq!(limiter.admit(ReceiverId(1), "refused", start), None);
        }
        // Another receiver and another kind have their own windows.
        assert_eq!(limiter.admit(ReceiverId(2), "refused", start), Some(0));
        assert_eq!(limiter.admit(ReceiverId(1), "plugin", start), Some(0));
        // After the interval, one line that counts what was left out.
        assert_eq!(
            limiter.admit(ReceiverId(1), "refused", start + INTERVAL),
            Some(999)
        );
        assert_eq!(
            limiter.admit(ReceiverId(1), "refused", start + INTERVAL),
            None
        );
    }
}
