//! A receiver's health as the circuit breaker records it: consecutive
//! failures, when the streak began, the open circuit and its next probe.

use super::{Result, Store, now_ms, on_pool};
use crate::model::ReceiverId;

impl Store {
    /// Records the circuit breaker's state after attempts: the consecutive
    /// failure count and when the streak began (kept from its first
    /// record), and, when it trips, the probe time and reason. `closed`
    /// clears all of it.
    pub(crate) async fn record_receiver_health(
        &self,
        id: ReceiverId,
        consecutive_failures: i32,
        failing_since: i64,
        trip: Option<(i64, &str)>,
        closed: bool,
    ) -> Result<()> {
        let now = now_ms();
        match trip {
            Some((open_until, reason)) => {
                on_pool!(self, |pool| {
                    sqlx::query(
                        "UPDATE receivers SET consecutive_failures = $2, circuit_open_until = $3, paused_reason = $4, \
                         circuit_trips = circuit_trips + 1, failing_since = COALESCE(failing_since, $6), updated_at = $5 \
                         WHERE id = $1 AND paused = FALSE",
                    )
                    .bind(id)
                    .bind(consecutive_failures)
                    .bind(open_until)
                    .bind(reason)
                    .bind(now)
                    .bind(failing_since)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
                })?;
            }
            None if closed => {
                on_pool!(self, |pool| {
                    sqlx::query(
                        "UPDATE receivers SET consecutive_failures = 0, circuit_open_until = NULL, circuit_trips = 0, \
                         failing_since = NULL, paused_reason = CASE WHEN paused THEN paused_reason ELSE NULL END, \
                         updated_at = $2 \
                         WHERE id = $1 AND (circuit_open_until IS NOT NULL OR consecutive_failures <> 0 \
                         OR failing_since IS NOT NULL)",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
                })?;
            }
            None => {
                on_pool!(self, |pool| {
                    sqlx::query(
                    "UPDATE receivers SET consecutive_failures = $2, failing_since = COALESCE(failing_since, $3) \
                     WHERE id = $1"
                )
                .bind(id)
                .bind(consecutive_failures)
                .bind(failing_since)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                })?;
            }
        }
        Ok(())
    }
}
