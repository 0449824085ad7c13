//! A receiver's `rateLimitPerSecond`: a token bucket per wall-clock second
//! whose tokens every process takes from the store in small chunks
//! ([`Store::take_rate_tokens`]), so all of them together send at most the
//! limit in any second. A chunk is a tenth of the limit: a process holding
//! tokens it does not use leaves the receiver under its limit, never over.

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
        loop {
            let now = now_ms();
            let second = now.div_euclid(1000);
            {
                let mut tokens = self.inner.lock().await;
                if tokens.window != second {
                    *tokens = Tokens {
                        window: second,
                        left: 0,
                    };
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
}
