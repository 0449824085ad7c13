//! Logical-replication capture (PostgreSQL, `capture_options.mode =
//! "logical"`): a publication of the mapped tables and a `pgoutput` slot,
//! streamed over a replication connection. Nothing is written into the
//! application's transactions.
//!
//! * The payload is the trigger mode's, byte for byte: rows are rendered by
//!   the captured database's own `to_json` ([`convert`]), unchanged TOASTed
//!   values come from the old row (`REPLICA IDENTITY FULL`, checked at
//!   start-up), no-op updates are dropped, `transaction_id` is the 64-bit
//!   transaction id and `occurred_at` the commit record's time.
//! * At least once: the slot's confirmed position moves past a transaction
//!   only after its deliveries are durable in the store. After a crash the
//!   stream resumes from the confirmed position; a change seen again has
//!   the same `(source, source_key)` (commit position and index) and its
//!   fan-out is a no-op.
//! * A heartbeat message goes through the slot every
//!   `heartbeat_interval_ms`, so an idle database does not hold WAL; the
//!   slot's lag is watched ([`slot::watch`]).
//! * Switching from triggers ([`switch`]) drops the triggers in one
//!   transaction with a marker message: what committed before the marker
//!   was logged by the triggers (and is imported from the log first), what
//!   committed after it comes from the slot.

pub(crate) mod convert;
pub(crate) mod pgoutput;
pub(crate) mod slot;
pub(crate) mod stream;
mod xid;

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgPool};
use tokio::task::JoinSet;

use super::switch;
use super::{Error, Importer, TableInfo};
use crate::config::{Config, redact_url};

/// A prepared logical capture.
pub(crate) struct LogicalCapture {
    pool: PgPool,
    url: String,
    schema: String,
    /// The replication slot's name.
    slot: String,
    /// Mapped tables by resource.
    tables: Arc<HashMap<String, TableInfo>>,
    /// Resource by relation OID.
    resources: Arc<HashMap<u32, String>>,
    source: String,
    /// `[capture_options]` (schema, batch size, heartbeat, lag limit).
    options: crate::config::CaptureOptions,
    /// What the stream skips: changes the triggers logged before a switch.
    skip: switch::Skip,
    /// A trigger log left to import before streaming.
    drain_log: bool,
    /// Back to triggers: the marker to drain the slot to, then drop it.
    until: Option<String>,
}

impl LogicalCapture {
    /// Checks the server (`wal_level`) and every mapped table (exists, has
    /// a primary key, `REPLICA IDENTITY FULL`, no generated column), then
    /// creates the publication and the slot, and switches from triggers if
    /// they are installed.
    pub(crate) async fn setup(url: &str, config: &Config) -> Result<LogicalCapture, Error> {
        let pool = super::catalog::connect(url).await?;
        let wal_level: String = sqlx::query_scalar("SELECT current_setting('wal_level')")
            .fetch_one(&pool)
            .await?;
        if wal_level != "logical" {
            return Err(Error::WalLevel { current: wal_level });
        }
        let schema = config.capture_options.schema.clone();
        let mut tables = HashMap::new();
        let mut resources = HashMap::new();
        let mut oids = Vec::new();
        for resource in config.resources.captured() {
            let table = resource.table.clone().unwrap_or_default();
            let info = super::catalog::introspect(&pool, &resource.name, &table).await?;
            let oid = check_table(&pool, &resource.name, &table).await?;
            resources.insert(oid, resource.name.clone());
            oids.push(i64::from(oid));
            tables.insert(resource.name.clone(), info);
        }
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('changewire.capture.install'))")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(switch::meta_sql(&schema)))
            .execute(&mut *tx)
            .await?;
        let install_id = switch::install_id(&mut tx, &schema).await?;
        let names: Vec<String> = tables.values().map(|t| t.table.clone()).collect();
        slot::install_publication(&mut tx, &schema, &names).await?;
        tx.commit().await?;
        let slot_name = switch::slot_name(&schema, &install_id);
        // The replication connection works before anything is switched.
        slot::check_replication(url, &schema, &slot_name).await?;
        let created = slot::ensure_slot(&pool, &slot_name).await?;
        if created {
            switch::forget_switches(&pool, &schema).await?;
        }
        let skip = switch::from_triggers(&pool, &schema, &oids).await?;
        let drain_log = switch::log_has_rows(&pool, &schema).await?;
        tracing::info!(
            capture = %redact_url(url),
            tables = tables.len(),
            slot = %slot_name,
            slot_created = created,
            install_id = %install_id,
            "PostgreSQL logical capture installed"
        );
        let mut capture =
            LogicalCapture::new(pool, url, config, Arc::new(tables), &install_id, skip);
        capture.resources = Arc::new(resources);
        capture.drain_log = drain_log;
        Ok(capture)
    }

    /// A capture of `tables` for the install `install_id` (no trigger log
    /// to import, no marker to stop at, no relation known yet).
    fn new(
        pool: PgPool,
        url: &str,
        config: &Config,
        tables: Arc<HashMap<String, TableInfo>>,
        install_id: &str,
        skip: switch::Skip,
    ) -> LogicalCapture {
        let schema = config.capture_options.schema.clone();
        LogicalCapture {
            pool,
            url: url.to_string(),
            source: format!("pg:{schema}@{install_id}"),
            slot: switch::slot_name(&schema, install_id),
            schema,
            tables,
            resources: Arc::new(HashMap::new()),
            options: config.capture_options.clone(),
            skip,
            drain_log: false,
            until: None,
        }
    }

    /// Back to triggers ([`switch::to_triggers`]): a capture that reads the
    /// slot up to the marker `token`, then drops the slot and the
    /// publication.
    pub(crate) async fn drainer(
        pool: PgPool,
        url: &str,
        config: &Config,
        tables: Arc<HashMap<String, TableInfo>>,
        install_id: &str,
        token: String,
    ) -> Result<LogicalCapture, Error> {
        let schema = config.capture_options.schema.clone();
        let mut resources = HashMap::new();
        for info in tables.values() {
            let oid: i64 = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
                .bind(&info.table)
                .fetch_one(&pool)
                .await?;
            let oid = u32::try_from(oid)
                .map_err(|_| Error::Protocol(format!("table {}: OID {oid}", info.table)))?;
            resources.insert(oid, info.resource.clone());
        }
        let skip = switch::skip_recorded(&pool, &schema).await?;
        let mut capture = LogicalCapture::new(pool, url, config, tables, install_id, skip);
        capture.resources = Arc::new(resources);
        capture.until = Some(token);
        Ok(capture)
    }

    /// Reads the slot to the marker, then drops it (see [`Self::drainer`]).
    pub(crate) async fn drain_to_marker(self, ctx: Importer) {
        stream::run(self, ctx).await;
    }

    /// Whether the trigger mode left changes in its log (imported first).
    pub(crate) fn log_left(&self) -> bool {
        self.drain_log
    }

    /// The capture schema.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// The mapped tables.
    pub(crate) fn tables(&self) -> Arc<HashMap<String, TableInfo>> {
        self.tables.clone()
    }

    /// The capture source (shared with the trigger mode).
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// How to connect to the captured database.
    pub(crate) fn connect_options(&self) -> sqlx::postgres::PgConnectOptions {
        (*self.pool.connect_options()).clone()
    }

    /// `[capture_options]`.
    pub(crate) fn options(&self) -> &crate::config::CaptureOptions {
        &self.options
    }

    /// Spawns the slot watcher (main runtime) and, on a thread of its own,
    /// the `prelude` (the trigger log's rest after a switch), then the
    /// stream.
    pub(crate) fn spawn(
        self,
        ctx: Importer,
        tasks: &mut JoinSet<()>,
        prelude: Option<super::Prelude>,
    ) -> Result<(), Error> {
        tasks.spawn(slot::watch(
            self.pool.clone(),
            self.slot.clone(),
            self.options.heartbeat_interval,
            self.options.slot_lag_limit,
            ctx.health.clone(),
            ctx.progress.clone(),
            ctx.shutdown.clone(),
        ));
        super::spawn_on_own_thread(ctx, tasks, move |ctx| async move {
            if let Some(prelude) = prelude {
                prelude(ctx.clone()).await;
            }
            stream::run(self, ctx).await;
        })
    }
}

/// The table's OID, after checking what logical capture needs of it.
async fn check_table(pool: &PgPool, resource: &str, table: &str) -> Result<u32, Error> {
    let oid: i64 = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
        .bind(table)
        .fetch_one(pool)
        .await?;
    // The table, or a partitioned table and each of its partitions (whose
    // changes are published as the table's: publish_via_partition_root).
    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.relid::regclass::text, c.relreplident::text \
         FROM (SELECT $1::bigint::oid AS relid, 0 AS level \
               UNION SELECT relid, level FROM pg_partition_tree($1::bigint::oid)) t \
         JOIN pg_class c ON c.oid = t.relid ORDER BY t.level, t.relid",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    if let Some((member, identity)) = members.iter().find(|(_, identity)| identity != "f") {
        return Err(Error::ReplicaIdentity {
            resource: resource.into(),
            table: member.clone(),
            current: match identity.as_str() {
                "n" => "NOTHING",
                "i" => "USING INDEX",
                _ => "DEFAULT",
            }
            .into(),
        });
    }
    let generated: Option<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::bigint::oid AND attnum > 0 \
         AND NOT attisdropped AND attgenerated <> '' ORDER BY attnum LIMIT 1",
    )
    .bind(oid)
    .fetch_optional(pool)
    .await?;
    if let Some(column) = generated {
        return Err(Error::GeneratedColumn {
            resource: resource.into(),
            table: table.into(),
            column,
        });
    }
    u32::try_from(oid).map_err(|_| Error::Protocol(format!("table {table}: OID {oid}")))
}

/// Drops the slot and the publication, if they exist. An abandoned slot
/// keeps every WAL segment from its position on: this is how to let go of
/// one.
pub(crate) async fn uninstall(url: &str, config: &Config) -> Result<(), Error> {
    let pool = super::catalog::connect(url).await?;
    switch::drop_slot_and_publication(&pool, &config.capture_options.schema).await?;
    pool.close().await;
    Ok(())
}
