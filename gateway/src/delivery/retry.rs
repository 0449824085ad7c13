//! When to try again.
//!
//! Exponential (default, 8 attempts spread over about a day): 10 s, 1 min,
//! 5 min, 30 min, 2 h, 6 h, 14 h between attempts, each ±20 % jitter so a
//! recovering receiver is not hit by every queued event at once. Fixed
//! (Inspectorio's "3 more tries, 60 s apart"): the same interval each time.
//! A receiver's `Retry-After` replaces the computed delay, within bounds.

use crate::model::RetryPolicy;
use std::time::Duration;

use rand::Rng;

/// Delays after the 1st, 2nd, … failed attempt (the last one repeats).
const EXPONENTIAL: &[u64] = &[10, 60, 300, 1_800, 7_200, 21_600, 50_400];

/// A receiver's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Growing delays with jitter.
    Exponential {
        /// Attempts before `failed`.
        max_attempts: u32,
    },
    /// The same delay each time.
    Fixed {
        /// Attempts before `failed`.
        max_attempts: u32,
        /// The delay.
        interval: Duration,
    },
}

impl Policy {
    /// From a receiver's settings.
    pub(crate) fn from_settings(
        kind: RetryPolicy,
        max_attempts: i32,
        interval_secs: i32,
    ) -> Policy {
        let max_attempts = u32::try_from(max_attempts.max(1)).unwrap_or(1);
        match kind {
            RetryPolicy::Fixed => Policy::Fixed {
                max_attempts,
                interval: Duration::from_secs(u64::try_from(interval_secs.max(1)).unwrap_or(60)),
            },
            RetryPolicy::Exponential => Policy::Exponential { max_attempts },
        }
    }

    /// Attempts allowed.
    pub(crate) fn max_attempts(&self) -> u32 {
        match self {
            Policy::Exponential { max_attempts } | Policy::Fixed { max_attempts, .. } => {
                *max_attempts
            }
        }
    }

    /// After the `attempt`-th failure (1-based, counted since the last manual
    /// redelivery): None when attempts are exhausted, else the delay.
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        max_retry_after: Duration,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts() {
            return None;
        }
        if let Some(ra) = retry_after {
            return Some(ra.clamp(
                Duration::from_secs(1),
                max_retry_after.max(Duration::from_secs(1)),
            ));
        }
        Some(match self {
            Policy::Fixed { interval, .. } => *interval,
            Policy::Exponential { .. } => {
                let index = usize::try_from(attempt.saturating_sub(1))
                    .unwrap_or(usize::MAX)
                    .min(EXPONENTIAL.len() - 1);
                let base = EXPONENTIAL[index] as f64;
                let jitter = rand::rng().random_range(0.8..1.2);
                Duration::from_millis((base * jitter * 1000.0) as u64)
            }
        })
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_spreads_eight_attempts_over_about_a_day() {
        let p = Policy::Exponential { max_attempts: 8 };
        let max = Duration::from_secs(3600);
        let total: u64 = (1..8)
            .map(|a| p.next_delay(a, None, max).unwrap().as_secs())
            .sum();
        assert!((60_000..110_000).contains(&total), "{total} s");
        assert_eq!(p.next_delay(8, None, max), None);
        let first = p.next_delay(1, None, max).unwrap();
        assert!(
            first >= Duration::from_secs(8) && first <= Duration::from_secs(12),
            "{first:?}"
        );
    }

    #[test]
    fn fixed_and_retry_after() {
        let p = Policy::from_settings(RetryPolicy::Fixed, 4, 60);
        assert_eq!(
            p.next_delay(1, None, Duration::from_secs(3600)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.next_delay(3, None, Duration::from_secs(3600)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(p.next_delay(4, None, Duration::from_secs(3600)), None);
        let bounded = p.next_delay(
            1,
            Some(Duration::from_secs(86_400)),
            Duration::from_secs(3600),
        );
        assert_eq!(bounded, Some(Duration::from_secs(3600)));
        assert_eq!(
            p.next_delay(1, Some(Duration::ZERO), Duration::from_secs(3600)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
