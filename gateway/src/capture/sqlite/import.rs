//! The SQLite importer: polls `PRAGMA data_version`, reads the log after
//! the cursor (checking the cursor's own row, so a log that started again
//! is read again instead of skipped), fans out, and trims.

use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{AssertSqlSafe, Row};
use tokio::task::JoinSet;

use super::super::rows::{LoggedRow, to_change};
use super::super::{Error, Importer};
use super::{LOG_TABLE, SqliteCapture, TRIM_AFTER};
use crate::store::capture_cursors::CaptureCursor;

impl SqliteCapture {
    /// Spawns the poller.
    pub(crate) fn spawn(mut self, ctx: Importer, tasks: &mut JoinSet<()>) -> Result<(), Error> {
        super::super::spawn_on_own_thread(ctx, tasks, move |ctx| async move {
            self.pool = SqlitePoolOptions::new()
                .max_connections(2)
                .connect_lazy_with((*self.pool.connect_options()).clone());
            self.poll_loop(ctx).await;
        })
    }

    async fn poll_loop(self, ctx: Importer) {
        if let Some(legacy) = &self.legacy_source {
            // Until this version the source was named by its URL; its cursor
            // carries over to the identity this start wrote (the log is the
            // same), once.
            match ctx.store.capture_cursor(legacy).await {
                Ok(cursor) if cursor.last_id > 0 => {
                    let taken = CaptureCursor {
                        last_id: cursor.last_id,
                        last_logged_at: None,
                    };
                    if let Err(err) = ctx.store.advance_cursor(&self.source, taken).await {
                        tracing::warn!(error = %crate::report::Report(&err), "taking over the capture cursor of {legacy} failed; the log is read from its start");
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %crate::report::Report(&err), "reading the capture cursor of {legacy} failed; the log is read from its start")
                }
            }
        }
        let mut pace = self.pace;
        let mut last_version: Option<i64> = None;
        let mut last_sweep = tokio::time::Instant::now();
        let mut backoff = super::super::Backoff::new();
        // The last import found nothing more to read.
        let mut drained = false;
        loop {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            let version: Result<i64, sqlx::Error> = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&self.pool)
                .await;
            let unchanged = matches!(&version, Ok(v) if last_version == Some(*v));
            let due = match version {
                Ok(v) => {
                    let changed = last_version != Some(v);
                    last_version = Some(v);
                    changed || last_sweep.elapsed() >= self.sweep
                }
                Err(_) => true,
            };
            if !due && unchanged && drained {
                // Nothing was written since the last import found the log empty.
                ctx.progress.caught_up();
            }
            if due {
                last_sweep = tokio::time::Instant::now();
                loop {
                    match self.import_batch(&ctx).await {
                        Ok(n) => {
                            ctx.health.ready("capture");
                            backoff.reset();
                            if n == 0 {
                                drained = true;
                                ctx.progress.caught_up();
                                break;
                            }
                            pace.saw_changes();
                        }
                        Err(err) => {
                            drained = false;
                            if !backoff.failed(&ctx, "capture import", &err).await {
                                return;
                            }
                            break;
                        }
                    }
                }
            }
            if !pace.pause(&ctx.shutdown).await {
                return;
            }
        }
    }

    /// Imports the rows after the cursor; returns how many it read.
    ///
    /// The cursor's own row is read along (`id >= cursor`; trimming keeps
    /// it) and must be the row imported last, with the same write time. If
    /// it is gone or different, the log started again below what was
    /// imported (purged, recreated, restored from a backup): rather than
    /// skip the new rows whose ids repeat, the cursor is rewound and the
    /// whole log read again, already imported rows being recognised by
    /// their identity (id and write time).
    async fn import_batch(&self, ctx: &Importer) -> Result<usize, Error> {
        let mut cursor = ctx.store.capture_cursor(&self.source).await?;
        let mut rows = self.read_log(cursor.last_id).await?;
        if cursor.last_id > 0 {
            if let Some(reason) = self.moved_back(&cursor, &rows).await? {
                metrics::counter!("changewire_capture_resyncs_total", "source" => "sqlite")
                    .increment(1);
                tracing::error!(
                    capture = %self.url,
                    imported_up_to = cursor.last_id,
                    "the capture log starts again below what was imported ({reason}): it was purged, \
                     recreated or restored from a backup. Reading the whole log again: rows imported \
                     before are recognised and skipped, and no new row is skipped for its id"
                );
                ctx.store.rewind_cursor(&self.source).await?;
                cursor = CaptureCursor::default();
                rows = self.read_log(0).await?;
            } else if rows.first().and_then(|r| r.try_get::<i64, _>("id").ok())
                == Some(cursor.last_id)
            {
                rows.remove(0); // the cursor's own row, imported already
            }
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let mut changes = Vec::with_capacity(rows.len());
        let mut last = cursor;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let occurred_at: i64 = r.try_get("occurred_at")?;
            if id > last.last_id {
                last = CaptureCursor {
                    last_id: id,
                    last_logged_at: Some(occurred_at),
                };
            }
            let logged = LoggedRow {
                id,
                resource: r.try_get("resource")?,
                action: r.try_get("action")?,
                transaction_id: id,
                occurred_at,
                source_key: LoggedRow::log_key(id, occurred_at),
                old_row: r.try_get("old_row")?,
                new_row: r.try_get("new_row")?,
            };
            let Some(table) = self.tables.get(&logged.resource) else {
                continue;
            };
            if let Some(change) = to_change(&self.source, table, &logged)? {
                changes.push(change);
            }
        }
        let needs = super::super::expand::Needs::load(&ctx.store).await?;
        super::super::expand::related_sqlite(
            &self.pool,
            &self.tables,
            &self.columns,
            &needs,
            &mut changes,
        )
        .await?;
        needs.trim_records(&mut changes);
        ctx.fan_out(&changes, "sqlite", None).await?;
        ctx.store.advance_cursor(&self.source, last).await?;
        let last = last.last_id;
        let imported = i64::try_from(rows.len()).unwrap_or(0);
        let since = self
            .imported_since_trim
            .fetch_add(imported, std::sync::atomic::Ordering::SeqCst)
            + imported;
        if since >= TRIM_AFTER {
            self.imported_since_trim
                .store(0, std::sync::atomic::Ordering::SeqCst);
            // Already imported (the cursor is durable in the store): trim
            // them, all but the cursor's own row, which the next import
            // reads to check that the log did not start again.
            let trimmed = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {LOG_TABLE} WHERE id < $1"
            )))
            .bind(last)
            .execute(&self.pool)
            .await;
            if let Err(err) = trimmed {
                tracing::debug!(error = %err, "trimming the SQLite capture log failed; will retry later");
            }
        }
        Ok(rows.len())
    }

    /// Log rows from `from` on (inclusive), oldest first: a batch, plus the
    /// cursor's own row.
    async fn read_log(&self, from: i64) -> Result<Vec<sqlx::sqlite::SqliteRow>, Error> {
        Ok(sqlx::query(AssertSqlSafe(format!(
            "SELECT id, resource, action, occurred_at, old_row, new_row FROM {LOG_TABLE} WHERE id >= $1 ORDER BY id LIMIT $2"
        )))
        .bind(from)
        .bind(self.batch + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Why the log no longer holds the row the cursor points at, if it
    /// does not: the log started again below what was imported.
    async fn moved_back(
        &self,
        cursor: &CaptureCursor,
        rows: &[sqlx::sqlite::SqliteRow],
    ) -> Result<Option<String>, Error> {
        let first = rows.first().map(|r| {
            (
                r.try_get::<i64, _>("id").unwrap_or_default(),
                r.try_get::<i64, _>("occurred_at").unwrap_or_default(),
            )
        });
        match (cursor.last_logged_at, first) {
            (Some(at), Some((id, logged))) if id == cursor.last_id && logged == at => Ok(None),
            (Some(_), Some((id, _))) if id == cursor.last_id => Ok(Some(format!(
                "row {id} was written at another time than the row imported under that id"
            ))),
            (Some(_), _) => Ok(Some(format!("row {} is gone", cursor.last_id))),
            // A cursor from before write times were kept: trimming deleted
            // its row, so compare with the largest id the log ever issued.
            (None, _) => {
                let issued: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
                        .bind(LOG_TABLE)
                        .fetch_optional(&self.pool)
                        .await?;
                let issued = issued.unwrap_or(0);
                Ok((issued < cursor.last_id).then(|| {
                    format!(
                        "its largest id is {issued}, below the {} imported",
                        cursor.last_id
                    )
                }))
            }
        }
    }
}
