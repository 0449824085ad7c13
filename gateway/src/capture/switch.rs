//! Switching a database between the trigger mode and the logical mode
//! without losing or repeating a change (and what both modes share in
//! `capture_meta`: the identity, the slot's name).
//!
//! The slot exists first (its consistent point is before the switch). One
//! transaction then drops the triggers of every mapped table and writes a
//! marker message into the WAL. Dropping a trigger waits for every
//! transaction that wrote to the table (they hold its row lock) and holds
//! back every later writer until the switch commits, so: a transaction
//! committed before the marker ran the triggers (its changes are in the
//! log, imported first), one committed after it did not (its changes come
//! from the slot). The stream skips every transaction up to the marker,
//! then records the marker's position in `capture_meta`, so a restart that
//! replays from before it still skips the same transactions.

use std::time::Duration;

use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

use crate::capture::Error;

/// The marker message's prefix.
pub(crate) const MARKER_PREFIX: &str = "changewire.switch";

/// `capture_meta`'s key for what the stream skips.
const SKIP_KEY: &str = "logical_since";

/// `capture_meta`'s key for the marker a switch back to triggers drains
/// the slot to.
const TRIGGERS_KEY: &str = "triggers_since";

/// The schema and `capture_meta` (shared with the trigger mode).
pub(crate) fn meta_sql(schema: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};\n\
         CREATE TABLE IF NOT EXISTS {schema}.capture_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    )
}

/// A `capture_meta` value.
async fn meta_value<'c>(
    db: impl sqlx::PgExecutor<'c>,
    schema: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT value FROM {schema}.capture_meta WHERE key = $1"
    )))
    .bind(key)
    .fetch_optional(db)
    .await?)
}

/// Writes a marker message into the WAL (in `tx`, so it commits with the
/// switch) and records it under `key` as pending; returns its token.
async fn emit_marker(
    tx: &mut Transaction<'static, Postgres>,
    schema: &str,
    key: &str,
) -> Result<String, Error> {
    let token = crate::capture::new_install_id();
    sqlx::query("SELECT pg_logical_emit_message(true, $1, $2)")
        .bind(MARKER_PREFIX)
        .bind(&token)
        .execute(&mut **tx)
        .await?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.capture_meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )))
    .bind(key)
    .bind(format!("pending:{token}"))
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// Whether the slot exists in this database.
pub(crate) async fn slot_exists<'c>(
    db: impl sqlx::PgExecutor<'c>,
    slot: &str,
) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database())",
    )
    .bind(slot)
    .fetch_one(db)
    .await?)
}

/// The capture's identity (made at the first install, by either mode).
pub(crate) async fn install_id(
    tx: &mut Transaction<'static, Postgres>,
    schema: &str,
) -> Result<String, Error> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.capture_meta (key, value) VALUES ('install_id', $1) ON CONFLICT (key) DO NOTHING"
    )))
    .bind(crate::capture::new_install_id())
    .execute(&mut **tx)
    .await?;
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT value FROM {schema}.capture_meta WHERE key = 'install_id'"
    )))
    .fetch_one(&mut **tx)
    .await?)
}

/// The slot's name: slot names are global to the server, so it carries
/// the capture's identity (two captured databases on one server, each with
/// its own slot): `<schema>_<16 hex digits>`, lowercase, at most 63 bytes.
pub(crate) fn slot_name(schema: &str, install_id: &str) -> String {
    let id: String = install_id.chars().take(16).collect();
    format!("{}{id}", slot_prefix(schema))
}

/// What every slot name of a capture schema starts with (then 16 hex
/// digits): the schema folded to lowercase, at most 40 bytes, and `_`.
pub(crate) fn slot_prefix(schema: &str) -> String {
    let schema: String = schema.to_ascii_lowercase().chars().take(40).collect();
    format!("{schema}_")
}

/// The switches' keys go: for a new slot (nothing to skip, no switch to
/// finish; keys left by an earlier slot that was dropped, invalidated or
/// uninstalled go before the triggers, if any, are switched from), and
/// after a slot was drained to its marker and dropped.
pub(crate) async fn forget_switches(pool: &PgPool, schema: &str) -> Result<(), Error> {
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {schema}.capture_meta WHERE key IN ('{SKIP_KEY}', '{TRIGGERS_KEY}')"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

/// The publication's name for a capture schema.
pub(crate) fn publication_name(schema: &str) -> String {
    // As PostgreSQL stores an unquoted name: lowercase, at most 63 bytes.
    let name = format!("{}_publication", schema.to_ascii_lowercase());
    name.chars().take(63).collect()
}

/// Drops the capture's slots in this database (`<schema>_…`, `pgoutput`;
/// ending the session that holds one, if any) and the publication.
pub(crate) async fn drop_slot_and_publication(pool: &PgPool, schema: &str) -> Result<(), Error> {
    const OURS: &str = "database = current_database() AND plugin = 'pgoutput' \
                        AND starts_with(slot_name, $1) AND length(slot_name) = length($1) + 16";
    // A running gateway reconnects: end its session and drop in a loop.
    let mut attempts = 0;
    loop {
        attempts += 1;
        sqlx::query(AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE {OURS} AND active_pid IS NOT NULL"
        )))
        .bind(slot_prefix(schema))
        .execute(pool)
        .await?;
        let dropped = sqlx::query(AssertSqlSafe(format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE {OURS}"
        )))
        .bind(slot_prefix(schema))
        .execute(pool)
        .await;
        match dropped {
            Ok(_) => break,
            // "is active for PID …": its session has not ended yet.
            Err(sqlx::Error::Database(e))
                if attempts < 100 && e.code().as_deref() == Some("55006") =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    sqlx::query(AssertSqlSafe(format!(
        "DROP PUBLICATION IF EXISTS {}",
        publication_name(schema)
    )))
    .execute(pool)
    .await?;
    Ok(())
}

/// What the stream skips (changes the triggers captured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Nothing: the slot was never preceded by triggers.
    Nothing,
    /// Every transaction until the marker with this token.
    UntilMarker(String),
    /// Every transaction committed at or before this position (the marker's).
    Through(u64),
}

impl Skip {
    fn parse(value: Option<&str>) -> Skip {
        match value {
            Some(v) => match v.split_once(':') {
                Some(("pending", token)) => Skip::UntilMarker(token.to_string()),
                Some(("lsn", lsn)) => lsn.parse().map(Skip::Through).unwrap_or(Skip::Nothing),
                _ => Skip::Nothing,
            },
            None => Skip::Nothing,
        }
    }

    /// Whether a transaction committed at `commit_lsn` is skipped.
    pub(crate) fn skips(&self, commit_lsn: u64) -> bool {
        match self {
            Skip::Nothing => false,
            Skip::UntilMarker(_) => true,
            Skip::Through(lsn) => commit_lsn <= *lsn,
        }
    }
}

/// What the stream skips, as `capture_meta` records it.
pub(crate) async fn skip_recorded(pool: &PgPool, schema: &str) -> Result<Skip, Error> {
    let value = meta_value(pool, schema, SKIP_KEY).await?;
    Ok(Skip::parse(value.as_deref()))
}

/// Records that the marker committed at `commit_lsn` (before the stream
/// confirms anything past it).
pub(crate) async fn marker_seen(pool: &PgPool, schema: &str, commit_lsn: u64) -> Result<(), Error> {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {schema}.capture_meta SET value = $1 WHERE key = '{SKIP_KEY}'"
    )))
    .bind(format!("lsn:{commit_lsn}"))
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops the capture triggers of the mapped tables (`oids`), if any, with
/// a marker; returns what the stream must skip.
pub(crate) async fn from_triggers(
    pool: &PgPool,
    schema: &str,
    oids: &[i64],
) -> Result<Skip, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_switch(pool, schema, oids).await {
            Ok(skip) => return Ok(skip),
            // A writer that locked tables in another order: PostgreSQL
            // aborts one of the two; try again.
            Err(Error::Database(sqlx::Error::Database(e)))
                if attempt < 30 && matches!(e.code().as_deref(), Some("40P01" | "55P03")) =>
            {
                tracing::info!(
                    "switching to logical capture: a writer holds a table (deadlock or lock timeout), retrying"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

async fn try_switch(pool: &PgPool, schema: &str, oids: &[i64]) -> Result<Skip, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('changewire.capture.install'))")
        .execute(&mut *tx)
        .await?;
    // Dropping a trigger waits for the table's writers while holding the
    // tables already done: give up after a while (and try again) rather
    // than hold the application's readers behind it.
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *tx)
        .await?;
    let triggered: Vec<String> = sqlx::query_scalar(
        "SELECT tgrelid::regclass::text FROM pg_trigger \
         WHERE tgname = 'changewire_capture' AND tgrelid = ANY(SELECT unnest($1::int8[])::oid) \
         ORDER BY tgrelid",
    )
    .bind(oids)
    .fetch_all(&mut *tx)
    .await?;
    if triggered.is_empty() {
        let value = meta_value(&mut *tx, schema, SKIP_KEY).await?;
        tx.commit().await?;
        return Ok(Skip::parse(value.as_deref()));
    }
    let draining = meta_value(&mut *tx, schema, TRIGGERS_KEY).await?;
    if draining.is_some_and(|v| v.starts_with("pending:")) {
        // What the slot holds before that switch's marker is in neither the
        // log nor the store yet.
        return Err(Error::Protocol(
            "a switch back to the trigger mode has not finished (its gateway reads the \
             replication slot up to the switch, then drops it): run a gateway with \
             capture_options.mode = \"triggers\" until /readyz is ready, then switch"
                .into(),
        ));
    }
    for table in &triggered {
        // regclass text is already quoted where it needs to be.
        sqlx::query(AssertSqlSafe(format!(
            "DROP TRIGGER IF EXISTS changewire_capture ON {table}"
        )))
        .execute(&mut *tx)
        .await?;
    }
    let token = emit_marker(&mut tx, schema, SKIP_KEY).await?;
    // A switch back to triggers that had not finished is over: its slot is
    // this one again.
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {schema}.capture_meta WHERE key = '{TRIGGERS_KEY}'"
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(tables = ?triggered, "capture triggers dropped: switched to logical capture");
    Ok(Skip::UntilMarker(token))
}

/// What the trigger mode does with a slot it finds at install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotFound {
    /// None there.
    None,
    /// Back from the logical mode: read it to this marker, then drop it.
    Drain(String),
    /// A switch to the logical mode that never finished (the triggers
    /// were still there): everything in it is in the log too. Dropped.
    Unused,
}

/// Back to triggers: inside the trigger mode's install transaction, after
/// its `CREATE TRIGGER`s (which wait for the tables' writers the same way),
/// a marker, if the logical mode's slot exists: the slot is drained up to
/// it (what committed before it has no log rows), then dropped. A switch
/// interrupted before the drain ended keeps its first marker. `had_triggers`:
/// the triggers were there before this install.
pub(crate) async fn to_triggers(
    tx: &mut Transaction<'static, Postgres>,
    schema: &str,
    install_id: &str,
    had_triggers: bool,
) -> Result<SlotFound, Error> {
    if !slot_exists(&mut **tx, &slot_name(schema, install_id)).await? {
        return Ok(SlotFound::None);
    }
    let pending = meta_value(&mut **tx, schema, TRIGGERS_KEY).await?;
    if let Some(token) = pending.as_deref().and_then(|v| v.strip_prefix("pending:")) {
        return Ok(SlotFound::Drain(token.to_string()));
    }
    if had_triggers {
        return Ok(SlotFound::Unused);
    }
    let token = emit_marker(tx, schema, TRIGGERS_KEY).await?;
    tracing::info!("capture triggers installed beside a replication slot: draining the slot first");
    Ok(SlotFound::Drain(token))
}

/// Whether the trigger mode's log still holds changes to import.
pub(crate) async fn log_has_rows(pool: &PgPool, schema: &str) -> Result<bool, Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{schema}.logged_actions"))
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM {schema}.logged_actions)"
    )))
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_valid_and_unique_per_install() {
        let name = slot_name("Change_Wire", "0123456789abcdef0123456789abcdef");
        assert_eq!(name, "change_wire_0123456789abcdef");
        let long = slot_name(&"s".repeat(63), &"f".repeat(32));
        assert!(long.len() <= 63, "{long}");
    }

    #[test]
    fn skip_rules() {
        assert_eq!(Skip::parse(None), Skip::Nothing);
        assert_eq!(
            Skip::parse(Some("pending:ab")),
            Skip::UntilMarker("ab".into())
        );
        assert_eq!(Skip::parse(Some("lsn:42")), Skip::Through(42));
        assert!(Skip::Through(42).skips(42));
        assert!(!Skip::Through(42).skips(43));
        assert!(Skip::UntilMarker("x".into()).skips(u64::MAX));
        assert!(!Skip::Nothing.skips(0));
    }
}
