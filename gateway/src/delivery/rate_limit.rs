//! A receiver's `rateLimitPerSecond`: a token bucket per wall-clock second
//! whose tokens every process takes from the store in small chunks
//! ([`Store::take_rate_tokens`]), so all of them together send at most the
//! limit in any second. A chunk is a tenth of the limit: a process holding
//! tokens it does not use leaves the receiver under its limit, never over.
//!
//! Within a process the requests are also paced, one every `1/limit`
//! seconds, instead of spending a second's tokens in a burst at its start:
//! the receiver sees an even stream, and a request that takes a few
//! milliseconds longer on its way cannot land in the next second on top of
//! that second's own budget.

use std::time::Duration;

use tokio::sync::Mutex;

use crate::model::ReceiverId;
use crate::store::{self, Store, now_ms};

/// This process's tokens for one receiver's current second.
#[derive(Debug, Default)]
pub(crate) struct RateBucket {
    inner: Mutex<Tokens>,
}

#[derive(Debug, Default)]
struct Tokens {
    /// The second (Unix) these tokens belong to.
    window: i64,
    left: i32,
    /// Microseconds (Unix) before which the next request is not sent.
    next_slot_us: i64,
}

/// Reserves the next paced slot at or after `now_us` for a limit per
/// second, and returns it.
fn reserve_slot(next_slot_us: &mut i64, now_us: i64, limit: i32) -> i64 {
    let interval = 1_000_000 / i64::from(limit.max(1));
    let slot = now_us.max(*next_slot_us);
    *next_slot_us = slot + interval;
    slot
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2))
}

/// How many tokens to take from the store at once.
fn chunk(limit: i32) -> i32 {
    (limit / 10).max(1)
}

impl RateBucket {
    /// Waits until one request may go to `receiver` under `limit` per
    /// second. Fails only when the store cannot be asked (the caller holds
    /// the delivery: sending anyway could break the limit).
    pub(crate) async fn acquire(
        &self,
        store: &Store,
        receiver: ReceiverId,
        limit: i32,
    ) -> store::Result<()> {
        let slot = reserve_slot(&mut self.inner.lock().await.next_slot_us, now_us(), limit);
        let wait = slot - now_us();
        // Under a millisecond early is close enough (timers are that coarse).
        if wait >= 1000 {
            tokio::time::sleep(Duration::from_micros(u64::try_from(wait).unwrap_or(0))).await;
        }
        loop {
            let now = now_ms();
            let second = now.div_euclid(1000);
            {
                let mut tokens = self.inner.lock().await;
                if tokens.window != second {
                    tokens.window = second;
                    tokens.left = 0;
                }
                if tokens.left == 0 {
                    tokens.left = store
                        .take_rate_tokens(receiver, second, chunk(limit), limit)
                        .await?;
                }
                if tokens.left > 0 {
                    tokens.left -= 1;
                    return Ok(());
                }
            }
            // This second's budget is spent: wait for the next one.
            let until_next = 1000 - now.rem_euclid(1000);
            tokio::time::sleep(Duration::from_millis(
                u64::try_from(until_next).unwrap_or(1000) + 1,
            ))
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_a_tenth_of_the_limit_and_never_zero() {
        assert_eq!(chunk(1), 1);
        assert_eq!(chunk(9), 1);
        assert_eq!(chunk(50), 5);
        assert_eq!(chunk(1000), 100);
    }

    #[test]
    fn requests_are_paced_one_interval_apart_and_an_idle_receiver_starts_at_once() {
        let mut next = 0;
        let start = 5_000_000;
        // 20/s: 50 ms apart, however many ask at the same moment.
        assert_eq!(reserve_slot(&mut next, start, 20), start);
        assert_eq!(reserve_slot(&mut next, start, 20), start + 50_000);
        assert_eq!(reserve_slot(&mut next, start + 10, 20), start + 100_000);
        // Idle for a while: the next one goes at once, no burst is saved up.
        let later = start + 3_000_000;
        assert_eq!(reserve_slot(&mut next, later, 20), later);
        assert_eq!(reserve_slot(&mut next, later, 20), later + 50_000);
        // A nonsensical limit never divides by zero.
        assert_eq!(reserve_slot(&mut next, later, 0), later + 100_000);
    }
}
