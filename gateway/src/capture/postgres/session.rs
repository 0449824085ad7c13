//! The importer's own connection to the captured database, and the import
//! lock it holds.
//!
//! One importer at a time across gateways keeps per-row commit order. The
//! lock is a session advisory lock on a connection kept for as long as it
//! works: the importer reads the log, deleting what the previous batch
//! fanned out, in one statement with no transaction around it (a
//! transaction would cost a `BEGIN` and a `COMMIT`, two round trips per
//! change at a trickle). If the connection fails it is closed, which releases the lock
//! on the server, and another gateway's importer takes over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool};

use crate::capture::Error;

/// Takes the import lock if it is free (without waiting).
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('changewire.capture.import'))";

/// How often the importer vacuums the log itself, at most.
///
/// Every change is a row inserted into the log and deleted once imported.
/// Autovacuum visits a database once a minute (`autovacuum_naptime`), so
/// in between the log grows by a minute of dead rows (30,000 at 500
/// changes/s), and every read of it, empty or not, walks them all: 0.1 to
/// 0.2 ms of the server's time per read at a trickle, growing with the
/// rate. Vacuumed every second it stays a few pages long.
const VACUUM_EVERY: Duration = Duration::from_secs(1);

/// A connection to the captured database, and whether it holds the import
/// lock.
#[derive(Debug, Default)]
pub(super) struct ImportSession {
    conn: Option<PgConnection>,
    locked: bool,
    /// Whether rows were deleted from the log since the last vacuum began,
    /// and when it began.
    dirty: bool,
    vacuumed_at: Option<Instant>,
    /// A vacuum is running (on a connection of its own).
    vacuuming: Arc<AtomicBool>,
    /// Log rows fanned out and not deleted yet (the next read deletes
    /// them, and leaves them out). Kept across a failed read: the next one
    /// deletes them; a stop before that leaves them in the log, and the
    /// next importer imports them again as no-ops.
    imported: Vec<i64>,
}

impl ImportSession {
    /// The connection, once it holds the import lock; `None` while another
    /// gateway's importer holds it (asked again on every call, on the same
    /// connection).
    pub(super) async fn locked(
        &mut self,
        pool: &PgPool,
    ) -> Result<Option<&mut PgConnection>, Error> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                self.locked = false;
                pool.acquire().await?.detach()
            }
        };
        let conn = self.conn.insert(conn);
        if !self.locked {
            self.locked = sqlx::query_scalar(TRY_LOCK).fetch_one(&mut *conn).await?;
        }
        Ok(self.locked.then_some(conn))
    }

    /// After a failure: the connection is closed (its lock goes with it) and
    /// the next call opens another.
    pub(super) async fn reset(&mut self) {
        self.locked = false;
        if let Some(conn) = self.conn.take() {
            // Closing politely may fail on a broken connection; dropping it
            // closes the socket either way.
            let _ = conn.close().await;
        }
    }

    /// Log rows fanned out, for the next read to delete.
    pub(super) fn imported(&mut self, ids: Vec<i64>) {
        self.imported.extend(ids);
    }

    /// The log rows to delete with the next read.
    pub(super) fn to_delete(&self) -> Vec<i64> {
        self.imported.clone()
    }

    /// Forgets the log rows `ids` (what [`Self::to_delete`] gave), deleted,
    /// and vacuums the log (in the
    /// background, on another connection: the importer does not wait) when
    /// it is due. A role that does not own the log gets a warning from the
    /// server and nothing else: autovacuum still runs.
    pub(super) fn deleted(&mut self, ids: &[i64], pool: &PgPool, schema: &str) {
        // `ids` is what `to_delete` gave: the first of `imported`.
        let gone = ids.len().min(self.imported.len());
        self.imported.drain(..gone);
        self.dirty |= !ids.is_empty();
        let due = self
            .vacuumed_at
            .is_none_or(|at| at.elapsed() >= VACUUM_EVERY);
        if !self.dirty || !due || self.vacuuming.swap(true, Ordering::AcqRel) {
            return;
        }
        self.dirty = false;
        self.vacuumed_at = Some(Instant::now());
        let (pool, running) = (pool.clone(), self.vacuuming.clone());
        let sql = format!("VACUUM (SKIP_LOCKED) {schema}.logged_actions");
        tokio::spawn(async move {
            if let Err(err) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&pool).await {
                tracing::debug!(error = %err, "vacuuming the capture log failed");
            }
            running.store(false, Ordering::Release);
        });
    }
}
