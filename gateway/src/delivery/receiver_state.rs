//! A receiver's live state, which survives settings reloads: its request
//! slots (concurrency, halved while it asks to slow down), its circuit
//! breaker, its rate-limit tokens, its OAuth2 token and its pause.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::oauth::TokenCache;
use super::rate_limit::RateBucket;

/// Live state that survives settings reloads.
#[derive(Debug)]
pub(crate) struct ReceiverState {
    /// Concurrent requests.
    pub(crate) permits: Semaphore,
    permit_count: AtomicUsize,
    /// The receiver's configured concurrency.
    configured: AtomicUsize,
    /// The concurrency it gets while it asks to slow down (429, 502, 503,
    /// 504 without `Retry-After`): halved per such answer, one more per
    /// success, never above `configured`.
    window: AtomicUsize,
    /// Nothing is sent before this time (ms): a `Retry-After` it sent with a
    /// 429, 502, 503 or 504.
    pub(crate) throttled_until: AtomicI64,
    /// Its `rateLimitPerSecond` tokens.
    pub(crate) rate: RateBucket,
    /// Leased deliveries not yet finished in this process.
    pub(crate) in_flight: AtomicUsize,
    /// Consecutive failed attempts seen by this process.
    pub(crate) failures: AtomicU32,
    /// The circuit breaker's count of those: 3 per hard failure, 1 per
    /// "slow down" answer; the circuit opens at 3 × the threshold.
    pub(crate) strikes: AtomicU32,
    /// When the current streak of failures began (ms; 0: not failing).
    pub(crate) failing_since: AtomicI64,
    /// Circuit open until (ms); 0 when closed.
    pub(crate) open_until: AtomicI64,
    /// Times the circuit opened since the last success.
    pub(crate) trips: AtomicU32,
    /// A probe is in flight (half-open).
    pub(crate) probing: AtomicBool,
    /// Paused by hand.
    pub(crate) paused: AtomicBool,
    /// This process disabled the receiver (410 Gone, auto-disable): a
    /// settings reload whose store read began at or before this read number
    /// may predate the pause being written, so it keeps the receiver paused
    /// (`u64::MAX` while the write is under way; 0 when nothing is held).
    pub(crate) held_through_read: AtomicU64,
    /// Due deliveries may be waiting in the queue beyond what this process
    /// leased: the dispatcher leases for it again as soon as room frees up.
    pub(crate) may_have_due: AtomicBool,
    /// Moving average of recent HTTP attempt durations, µs (0: none yet).
    pub(crate) latency_us: AtomicU64,
    /// Its OAuth2 token, if it uses OAuth2.
    pub(crate) token: TokenCache,
}

impl ReceiverState {
    pub(crate) fn new(concurrency: usize) -> Self {
        ReceiverState {
            permits: Semaphore::new(concurrency),
            permit_count: AtomicUsize::new(concurrency),
            configured: AtomicUsize::new(concurrency),
            window: AtomicUsize::new(concurrency),
            throttled_until: AtomicI64::new(0),
            rate: RateBucket::default(),
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            strikes: AtomicU32::new(0),
            failing_since: AtomicI64::new(0),
            open_until: AtomicI64::new(0),
            trips: AtomicU32::new(0),
            probing: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            held_through_read: AtomicU64::new(0),
            may_have_due: AtomicBool::new(true),
            latency_us: AtomicU64::new(0),
            token: TokenCache::default(),
        }
    }

    /// Folds one HTTP attempt's duration into the moving average (1/8 weight).
    pub(crate) fn observe_latency(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old.saturating_mul(7)).saturating_add(sample) / 8
        };
        self.latency_us.store(new, Ordering::Relaxed);
    }

    /// Sets the configured concurrency (a settings reload).
    pub(crate) fn configure(&self, concurrency: usize) {
        self.configured.store(concurrency, Ordering::SeqCst);
        self.apply();
    }

    /// The receiver asked to slow down without saying for how long: halve
    /// its concurrency (at least 1).
    pub(crate) fn slow_down(&self) {
        let effective = self.effective();
        self.window.store((effective / 2).max(1), Ordering::SeqCst);
        self.apply();
    }

    /// An attempt succeeded: one more concurrent request, up to the
    /// configured number.
    pub(crate) fn speed_up(&self) {
        let configured = self.configured.load(Ordering::SeqCst);
        let grown = self
            .window
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                (w < configured).then_some(w + 1)
            })
            .is_ok();
        if grown {
            self.apply();
        }
    }

    /// Concurrency now: the configured one, or less while slowed down.
    pub(crate) fn effective(&self) -> usize {
        self.configured
            .load(Ordering::SeqCst)
            .min(self.window.load(Ordering::SeqCst))
            .max(1)
    }

    /// Adds or forgets permits to match [`Self::effective`]. Permits in use
    /// cannot be forgotten: the difference is forgotten by a later call.
    fn apply(&self) {
        let target = self.effective();
        let current = self.permit_count.load(Ordering::SeqCst);
        if target > current {
            self.permits.add_permits(target - current);
            self.permit_count.store(target, Ordering::SeqCst);
        } else if target < current {
            let forgotten = self.permits.forget_permits(current - target);
            self.permit_count
                .store(current - forgotten, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowing_down_halves_concurrency_and_successes_win_it_back_one_by_one() {
        let state = ReceiverState::new(8);
        state.slow_down();
        assert_eq!(state.effective(), 4);
        assert_eq!(state.permits.available_permits(), 4);
        state.slow_down();
        state.slow_down();
        state.slow_down();
        assert_eq!(state.effective(), 1, "never below one");
        for expected in 2..=8 {
            state.speed_up();
            assert_eq!(state.effective(), expected);
        }
        state.speed_up();
        assert_eq!(
            state.effective(),
            8,
            "never above the configured concurrency"
        );
        assert_eq!(state.permits.available_permits(), 8);
    }

    #[test]
    fn permits_in_use_are_forgotten_later() {
        let state = ReceiverState::new(2);
        let a = state.permits.try_acquire().expect("permit");
        let b = state.permits.try_acquire().expect("permit");
        state.slow_down();
        drop((a, b));
        assert_eq!(
            state.permits.available_permits(),
            2,
            "both were in use when it slowed down"
        );
        state.slow_down();
        assert_eq!(state.permits.available_permits(), 1);
    }
}
