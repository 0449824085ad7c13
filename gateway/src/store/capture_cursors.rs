//! `capture_cursors`: where a cursor-based capture source (SQLite) stands,
//! and the write time of the row it points at, so a log that started again
//! is noticed.

use super::{Result, Store};

/// A cursor-based capture source's position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CaptureCursor {
    /// The last imported log id (0: none).
    pub(crate) last_id: i64,
    /// When that log row was written, as the log stores it.
    pub(crate) last_logged_at: Option<i64>,
}

impl Store {
    /// Where a cursor-based capture source (SQLite) stands: the last
    /// imported log id and when that log row was written (None: never
    /// imported, or a cursor from before fingerprints were kept).
    pub(crate) async fn capture_cursor(&self, source: &str) -> Result<CaptureCursor> {
        let v: Option<(i64, Option<i64>)> =
            crate::store::on_pool!(self, |pool| sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT last_id, last_occurred_at FROM capture_cursors WHERE source = $1"
            )
            .bind(source)
            .fetch_optional(pool)
            .await)?;
        Ok(
            v.map_or(CaptureCursor::default(), |(last_id, last_logged_at)| {
                CaptureCursor {
                    last_id,
                    last_logged_at,
                }
            }),
        )
    }

    /// Advances a capture cursor (never backwards), remembering when the
    /// log row it now points at was written. Changes are idempotent on
    /// (source, source_key), so fanning out first and moving the cursor
    /// after is safe even if the process dies between.
    pub(crate) async fn advance_cursor(&self, source: &str, to: CaptureCursor) -> Result<()> {
        crate::store::on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO capture_cursors (source, last_id, last_occurred_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id, last_occurred_at = excluded.last_occurred_at \
             WHERE capture_cursors.last_id < excluded.last_id"
        )
        .bind(source)
        .bind(to.last_id)
        .bind(to.last_logged_at)
        .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Puts a capture cursor back to the start of its log (after the log
    /// was found purged, recreated or restored): every row now in the log
    /// is read again. Rows already imported are recognised by their
    /// identity and skipped; none is skipped for its id alone.
    pub(crate) async fn rewind_cursor(&self, source: &str) -> Result<()> {
        crate::store::on_pool!(self, |pool| sqlx::query(
            "DELETE FROM capture_cursors WHERE source = $1"
        )
        .bind(source)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
