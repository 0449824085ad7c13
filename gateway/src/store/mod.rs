//! The store: receivers, subscriptions, changes, deliveries and the audit
//! trail, on SQLite (the embedded default) or PostgreSQL (production), with
//! the same behaviour on both. One file per table.
//!
//! Most statements are written once: sqlx binds `$1…$N` positionally on both
//! backends, and [`on_pool!`] runs the same tokens against whichever pool the
//! store holds. Statements that differ (PostgreSQL's arrays and
//! `FOR UPDATE SKIP LOCKED`) branch explicitly.
//!
//! Times are Unix milliseconds; JSON is stored as text so the key order of a
//! captured row reaches receivers unchanged.

pub(crate) mod api_keys;
pub(crate) mod attempts;
pub(crate) mod capture_cursors;
pub(crate) mod changes;
pub(crate) mod console_sessions;
pub(crate) mod deliveries;
mod explain;
mod fan_out;
mod fan_out_pg;
pub(crate) mod operational;
pub(crate) mod partitions;
pub(crate) mod plans;
pub(crate) mod plugins;
pub(crate) mod rate_windows;
pub(crate) mod receiver_headers;
pub(crate) mod receiver_health;
pub(crate) mod receivers;
pub(crate) mod redelivery;
mod sqlite_file;
pub(crate) mod subscriptions;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::{StoreUrl, redact_url};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or failed a statement.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Running the embedded migrations failed.
    #[error("migrating the store failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The row does not exist.
    #[error("{entity} {id} does not exist")]
    NotFound {
        /// What was looked up.
        entity: &'static str,
        /// Its id.
        id: i64,
    },
    /// The caller's etag is stale: someone changed the row meanwhile.
    #[error(
        "{entity} {id} was changed by someone else (etag `{given}` is stale; current is `{current}`); re-read it and retry"
    )]
    Conflict {
        /// What was updated.
        entity: &'static str,
        /// Its id.
        id: i64,
        /// The etag the caller sent.
        given: String,
        /// The current etag.
        current: String,
    },
    /// A uniqueness rule refused the write.
    #[error("{0}")]
    Duplicate(String),
    /// A fan-out given the subscriptions' needs as its caller saw them
    /// found that a subscription now asks more of the batch (a column to
    /// expand, the full row): nothing was stored.
    #[error(
        "a subscription's expand or include_full_record changed while the batch was prepared; nothing was stored, prepare it again"
    )]
    NeedsChanged,
}

/// Result of store operations.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// The backend's pool.
#[derive(Debug, Clone)]
pub enum Backend {
    /// PostgreSQL, shared by every gateway of a deployment.
    Postgres(PgPool),
    /// SQLite, the embedded single-process default.
    Sqlite(SqlitePool),
}

/// Runs the same statement tokens against whichever pool the store holds.
///
/// `on_pool!(store, |pool| sqlx::query(SQL).bind(x).fetch_all(pool).await)` — both
/// arms must produce the same type, so `execute` results are mapped to
/// `rows_affected()` by the caller.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.backend() {
            $crate::store::Backend::Postgres($pool) => $body,
            $crate::store::Backend::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The changewire store.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// PostgreSQL: connections with `synchronous_commit = off`, used only to
    /// take leases. A lease lost in a server crash just makes its delivery
    /// due again, which at-least-once delivery already allows; skipping the
    /// WAL flush wait halves the commits that wait on disk per delivery.
    lease_pool: Option<PgPool>,
    /// PostgreSQL: the recorder's connections, whose planner settings
    /// ([`deliveries::RECORDER_PLANNER`]) are set once per connection, so
    /// that a batch is one statement and one round trip (not BEGIN, SET,
    /// the statement and COMMIT).
    recorder_pool: Option<PgPool>,
    /// PostgreSQL: the fan-out's connections, which always use the
    /// statement's generic plan ([`GENERIC_PLANS`]).
    fan_out_pool: Option<PgPool>,
    /// PostgreSQL: no pending delivery was created before this (ms), as
    /// last found ([`Store::refresh_lease_floor`]); the lease reads only the
    /// partitions from there on. `i64::MIN` (no bound) until first found.
    lease_floor: Arc<AtomicI64>,
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A fresh etag: 16 random hex digits.
pub(crate) fn new_etag() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// How far ahead of this gateway's clock another gateway's may be: a
/// delivery created further in the future than that is leased once this
/// clock has caught up with it, and a change stored that far ahead is still
/// found as a repeat.
pub(crate) const CLOCK_SKEW_MS: i64 = 60_000;

/// The PostgreSQL schema that holds changewire's own tables.
pub(crate) const PG_SCHEMA: &str = "changewire";

/// The setting of the connections that run the fan-out, the lease, the
/// recorder and the trigger importer's read of the log: PostgreSQL plans
/// each of them once per connection, not once per run. Left to choose, it
/// planned them afresh every time (a custom plan, to
/// prune the day partitions with the parameters' values), which cost more
/// than running them: 0.35 ms of planning for a 0.47 ms fan-out of one or
/// two changes, 1.4 ms for a 0.09 ms lease, 0.4 ms for a 0.3 ms record. The generic plans prune the
/// partitions when they run, and `store_plans` checks that they are
/// look-ups, never scans.
pub(crate) const GENERIC_PLANS: (&str, &str) = ("plan_cache_mode", "force_generic_plan");

impl Store {
    /// Connects, creating the SQLite file (mode 0600) or the PostgreSQL
    /// schema if needed, and runs the embedded migrations. An existing
    /// SQLite file that other users may read is made private.
    pub async fn connect(url: &StoreUrl) -> Result<Store> {
        let store = match url {
            StoreUrl::Sqlite(url) => {
                sqlite_file::make_private(url);
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?;
                Store {
                    backend: Backend::Sqlite(pool),
                    lease_pool: None,
                    recorder_pool: None,
                    fan_out_pool: None,
                    lease_floor: Arc::new(AtomicI64::new(i64::MIN)),
                }
            }
            StoreUrl::Postgres(url) => {
                let base = PgConnectOptions::from_str(url)?;
                // The schema must exist before connections select it.
                {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect_with(&base).await?;
                    sqlx::query("CREATE SCHEMA IF NOT EXISTS changewire")
                        .execute(&mut conn)
                        .await?;
                    conn.close().await?;
                }
                // JIT compiles a plan when its estimated cost is high, which
                // a lease over a million-row backlog is: 150 ms of compiling
                // for a 2 ms query. Nothing the gateway runs profits from it.
                let base = base.options([("jit", "off")]);
                let options = base.clone().options([("search_path", PG_SCHEMA)]);
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                let lease_options = base.clone().options([
                    ("search_path", PG_SCHEMA),
                    ("synchronous_commit", "off"),
                    GENERIC_PLANS,
                ]);
                let lease_pool = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(lease_options)
                    .await?;
                let fan_out_options = base
                    .clone()
                    .options([("search_path", PG_SCHEMA), GENERIC_PLANS]);
                let fan_out_pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(fan_out_options);
                let recorder_options = base
                    .options([("search_path", PG_SCHEMA), GENERIC_PLANS])
                    .options(deliveries::RECORDER_PLANNER);
                let recorder_pool = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(recorder_options);
                Store {
                    backend: Backend::Postgres(pool),
                    lease_pool: Some(lease_pool),
                    recorder_pool: Some(recorder_pool),
                    fan_out_pool: Some(fan_out_pool),
                    lease_floor: Arc::new(AtomicI64::new(i64::MIN)),
                }
            }
        };
        store.migrate().await?;
        // Day partitions before the first write (PostgreSQL). Should another
        // gateway hold the lock too long, rows go to the default partition
        // meanwhile and upkeep tries again.
        match store.create_partitions_ahead(now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(partitions = n, "created day partitions"),
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "creating day partitions failed")
            }
        }
        tracing::debug!(store = %redact_url(url.as_str()), "store ready");
        Ok(store)
    }

    /// The same store through connections of its own, opened on first use
    /// by the runtime that uses them. Call it on that runtime (a dedicated
    /// thread's): the pools' maintenance tasks start where they are made.
    pub(crate) fn with_own_connections(&self, max_connections: u32) -> Store {
        let lazy_pg = |pool: &PgPool, max: u32| {
            PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with((*pool.connect_options()).clone())
        };
        match &self.backend {
            Backend::Postgres(pool) => Store {
                backend: Backend::Postgres(lazy_pg(pool, max_connections)),
                lease_pool: self.lease_pool.as_ref().map(|p| lazy_pg(p, 1)),
                recorder_pool: self.recorder_pool.as_ref().map(|p| lazy_pg(p, 1)),
                fan_out_pool: self.fan_out_pool.as_ref().map(|p| lazy_pg(p, 1)),
                lease_floor: self.lease_floor.clone(),
            },
            Backend::Sqlite(pool) => Store {
                backend: Backend::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .connect_lazy_with((*pool.connect_options()).clone()),
                ),
                lease_pool: None,
                recorder_pool: None,
                fan_out_pool: None,
                lease_floor: self.lease_floor.clone(),
            },
        }
    }

    /// Runs the embedded migrations (idempotent; PostgreSQL takes a lock, so
    /// several gateways may start at once).
    pub(crate) async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
            Backend::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// The pool.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// A cheap round trip, for `/readyz`.
    pub(crate) async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The lease's lower bound on `created_at` (see [`Store::lease_floor`]'s
    /// field and [`Store::refresh_lease_floor`]).
    pub fn lease_floor(&self) -> i64 {
        self.lease_floor.load(Ordering::Relaxed)
    }

    /// Lowers the lease's bound to `created_at`: a delivery created then was
    /// just made pending again (a retry or redelivery of an older event).
    pub(crate) fn lower_lease_floor(&self, created_at: i64) {
        self.lease_floor.fetch_min(created_at, Ordering::Relaxed);
    }

    /// Finds again where the oldest pending delivery's partition starts
    /// (PostgreSQL; upkeep calls it every few seconds). Another gateway's
    /// redelivery of an older event is found here: leased at most one
    /// refresh later, never lost.
    pub async fn refresh_lease_floor(&self, now: i64) -> Result<i64> {
        let floor = match self.backend() {
            Backend::Postgres(pool) => partitions::pending_floor(pool, now).await?,
            Backend::Sqlite(_) => i64::MIN,
        };
        self.lease_floor.store(floor, Ordering::Relaxed);
        Ok(floor)
    }

    /// The pool for leases (PostgreSQL: asynchronous commit, generic plans).
    pub(crate) fn lease_pool(&self) -> Option<&PgPool> {
        self.lease_pool.as_ref()
    }

    /// The recorder's pool (PostgreSQL: planner settings of its own).
    pub(crate) fn recorder_pool(&self) -> Option<&PgPool> {
        self.recorder_pool.as_ref()
    }

    /// The fan-out's pool (PostgreSQL: generic plans).
    pub(crate) fn fan_out_pool(&self) -> Option<&PgPool> {
        self.fan_out_pool.as_ref()
    }

    /// Closes the pools.
    pub async fn close(&self) {
        for pool in [&self.lease_pool, &self.recorder_pool, &self.fan_out_pool]
            .into_iter()
            .flatten()
        {
            pool.close().await;
        }
        on_pool!(self, |pool| pool.close().await);
    }
}

/// Whether an error is a uniqueness violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
