//! `receiver_rate_windows`: the per-second budget of a rate-limited receiver,
//! shared by every gateway process that sends to it.

use super::{Result, Store, on_pool};
use crate::model::ReceiverId;

/// Takes up to `want` tokens of second `window` (Unix seconds) out of
/// `limit`, atomically: the row holds what every process took this second.
/// A newer window resets the count; an older one (a process whose clock is
/// behind) gets nothing. `granted` is what this call took, clamped at 0
/// when the limit was lowered below what was already taken.
const TAKE: &str = "INSERT INTO receiver_rate_windows (receiver_id, window_start, used, granted) \
     VALUES ($1, $2, CASE WHEN $3 < $4 THEN $3 ELSE $4 END, CASE WHEN $3 < $4 THEN $3 ELSE $4 END) \
     ON CONFLICT (receiver_id) DO UPDATE SET \
       window_start = excluded.window_start, \
       used = CASE WHEN receiver_rate_windows.window_start = excluded.window_start \
         THEN CASE WHEN receiver_rate_windows.used + $3 < $4 THEN receiver_rate_windows.used + $3 ELSE $4 END \
         ELSE excluded.used END, \
       granted = CASE WHEN receiver_rate_windows.window_start = excluded.window_start \
         THEN CASE WHEN receiver_rate_windows.used + $3 < $4 THEN $3 ELSE $4 - receiver_rate_windows.used END \
         ELSE excluded.granted END \
     WHERE receiver_rate_windows.window_start <= excluded.window_start \
     RETURNING granted";

impl Store {
    /// Takes up to `want` of the `limit` requests receiver `id` may get in
    /// second `window`; returns how many this caller may send (0: wait for
    /// the next second).
    pub(crate) async fn take_rate_tokens(
        &self,
        id: ReceiverId,
        window: i64,
        want: i32,
        limit: i32,
    ) -> Result<i32> {
        let granted: Option<i32> = on_pool!(self, |pool| sqlx::query_scalar(TAKE)
            .bind(id)
            .bind(window)
            .bind(want)
            .bind(limit)
            .fetch_optional(pool)
            .await)?;
        Ok(granted.unwrap_or(0).max(0))
    }
}
