//! A receiver's live state, which survives settings reloads: its request
//! slots (concurrency, halved while it asks to slow down), its circuit
//! breaker, its rate-limit tokens, its OAuth2 token and its pause.

use std::sync::Mutex;
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
    /// How many permits it should have; changed under the lock only, so two
    /// answers arriving at once cannot both forget the same permits.
    concurrency: Mutex<Concurrency>,
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

/// The receiver's concurrency and the permits its semaphore holds.
#[derive(Debug)]
struct Concurrency {
    /// Permits the semaphore holds, in use or not.
    permits: usize,
    /// The receiver's configured concurrency.
    configured: usize,
    /// The concurrency it gets while it asks to slow down (429, 502, 503,
    /// 504 without `Retry-After`): halved per such answer, one more per
    /// success, never above `configured`.
    window: usize,
}

impl Concurrency {
    fn effective(&self) -> usize {
        self.configured.min(self.window).max(1)
    }
}

impl ReceiverState {
    pub(crate) fn new(concurrency: usize) -> Self {
        ReceiverState {
            permits: Semaphore::new(concurrency),
            concurrency: Mutex::new(Concurrency {
                permits: concurrency,
                configured: concurrency,
                window: concurrency,
            }),
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
        self.adjust(|c| c.configured = concurrency);
    }

    /// The receiver asked to slow down without saying for how long: halve
    /// its concurrency (at least 1).
    pub(crate) fn slow_down(&self) {
        self.adjust(|c| c.window = (c.effective() / 2).max(1));
    }

    /// An attempt succeeded: one more concurrent request, up to the
    /// configured number.
    pub(crate) fn speed_up(&self) {
        self.adjust(|c| {
            if c.window < c.configured {
                c.window += 1;
            }
        });
    }

    /// Concurrency now: the configured one, or less while slowed down.
    pub(crate) fn effective(&self) -> usize {
        self.lock().effective()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Concurrency> {
        // The guarded numbers are always consistent: a panic cannot leave
        // them half-written, so a poisoned lock is still usable.
        self.concurrency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the concurrency, then adds or forgets permits to match it.
    /// Permits in use cannot be forgotten: the difference is forgotten by a
    /// later call.
    fn adjust(&self, change: impl FnOnce(&mut Concurrency)) {
        let mut c = self.lock();
        change(&mut c);
        let target = c.effective();
        if target > c.permits {
            self.permits.add_permits(target - c.permits);
            c.permits = target;
        } else if target < c.permits {
            c.permits -= self.permits.forget_permits(c.permits - target);
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

    #[test]
    fn answers_at_once_never_lose_a_permit() {
        // Eight requests in flight answer "slow down" on eight threads at
        // once: whatever the interleaving, the semaphore ends up holding
        // exactly the effective concurrency once they are all done.
        for _ in 0..200 {
            let state = std::sync::Arc::new(ReceiverState::new(8));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let (state, barrier) = (state.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let permit = state.permits.try_acquire().expect("a permit each");
                        barrier.wait();
                        if i % 3 == 0 {
                            state.speed_up();
                        }
                        state.slow_down();
                        drop(permit);
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("thread");
            }
            state.speed_up();
            assert_eq!(
                state.permits.available_permits(),
                state.effective(),
                "every permit accounted for"
            );
        }
    }
}
