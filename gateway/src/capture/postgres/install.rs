//! The trigger mode's objects in the captured database: the log, the
//! trigger function and the triggers; their removal.

use sqlx::AssertSqlSafe;

use super::CHANNEL;
use crate::capture::Error;
use crate::capture::catalog::connect;
use crate::capture::sql::quote;
use crate::config::Config;

/// The install script (idempotent).
pub(super) fn install_sql(schema: &str, notify: bool) -> String {
    let notify = if notify {
        format!("PERFORM pg_notify('{CHANNEL}', tx::text);")
    } else {
        "-- no NOTIFY: the importer polls (capture_options.notify = false)".to_string()
    };
    // The schema and the capture's identity (`capture_meta`: made at the
    // first install, dropped with the log by `capture uninstall --purge`;
    // it names the capture source in the store).
    let meta = crate::capture::switch::meta_sql(schema);
    format!(
        r#"
{meta}
CREATE TABLE IF NOT EXISTS {schema}.logged_actions (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    transaction_id BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    old_row JSON,
    new_row JSON,
    dispatched_at TIMESTAMPTZ
);
CREATE OR REPLACE FUNCTION {schema}.capture_row_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    o json;
    n json;
    tx bigint := txid_current();
BEGIN
    -- `json` (text) is cheaper to build than `jsonb` and keeps column order.
    IF TG_OP = 'INSERT' THEN
        n := to_json(NEW);
    ELSIF TG_OP = 'UPDATE' THEN
        o := to_json(OLD);
        n := to_json(NEW);
        IF o::text = n::text THEN
            RETURN NULL;
        END IF;
    ELSE
        o := to_json(OLD);
    END IF;
    INSERT INTO {schema}.logged_actions (table_name, resource, action, transaction_id, occurred_at, old_row, new_row)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_ARGV[0],
            CASE TG_OP WHEN 'INSERT' THEN 'CREATE' WHEN 'UPDATE' THEN 'UPDATE' ELSE 'DELETE' END,
            tx, clock_timestamp(), o, n);
    {notify}
    RETURN NULL;
END
$fn$;
"#
    )
}

/// Drops the triggers and the trigger function; with `purge`, the log and
/// the capture's identity too.
pub(crate) async fn uninstall(url: &str, config: &Config, purge: bool) -> Result<(), Error> {
    let pool = connect(url).await?;
    let schema = &config.capture_options.schema;
    let mut tx = pool.begin().await?;
    for resource in config.resources.captured() {
        let table = resource.table.clone().unwrap_or_default();
        let exists: Option<i64> = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
            .bind(&table)
            .fetch_one(&mut *tx)
            .await?;
        if exists.is_some() {
            let sql = format!(
                "DROP TRIGGER IF EXISTS changewire_capture ON {}",
                quote(&table)
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
    }
    sqlx::query(AssertSqlSafe(format!(
        "DROP FUNCTION IF EXISTS {schema}.capture_row_change() CASCADE"
    )))
    .execute(&mut *tx)
    .await?;
    if purge {
        // The identity goes with the log: a reinstall is a new source.
        for table in ["logged_actions", "capture_meta"] {
            sqlx::query(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {schema}.{table}"
            )))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    pool.close().await;
    Ok(())
}
