//! The partitions of the audit trail (PostgreSQL; migration 0007): one per
//! UTC day for `changes`, `deliveries` (by `created_at`) and `attempts` (by
//! `started_at`), created a day ahead, and dropped whole by retention
//! once nothing in them is pending.
//!
//! A change and its deliveries share `created_at`, so a day's `changes`
//! partition holds exactly the changes of that day's `deliveries` partition:
//! the two are dropped together. A day's `attempts` partition can only hold
//! attempts of deliveries created that day or before, so it is dropped once
//! every `deliveries` partition that may have begun before its end is gone.
//!
//! Besides the day partitions, `<table>_default` takes any row no day
//! partition covers, and `<table>_before` (an upgraded store) holds what was
//! stored before the upgrade; both are pruned row by row ([`Store::prune`]).
//! The partitions are read from PostgreSQL's catalog, never from a list of
//! our own that could disagree with it.

use sqlx::PgPool;
use sqlx::{AssertSqlSafe, Row as _};
use time::OffsetDateTime;

mod retention;

pub use retention::Dropped;
pub(crate) use retention::drop_expired;

use super::{Backend, Result, Store};

/// One UTC day, in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// Days of partitions kept ready beyond today: tomorrow's exists a day
/// before it is written (checked every ten minutes), and no more, since
/// every empty partition a hot statement may reach costs it planning and a
/// probe. A gateway that could not create them in time writes into the
/// default partition meanwhile.
pub(crate) const DAYS_AHEAD: i64 = 1;

/// The partitioned tables (migration 0007 says by which column).
pub(crate) const PARTITIONED: [&str; 3] = ["changes", "deliveries", "attempts"];

/// How long a partition's creation or removal waits for the locks it needs
/// (it takes a brief exclusive lock on the table) before giving up until its
/// next turn, rather than queueing every statement behind it.
const LOCK_TIMEOUT: &str = "2s";

/// A transaction whose statements wait at most [`LOCK_TIMEOUT`] for a lock.
pub(super) async fn begin_short_waits(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query(AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
    )))
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// PostgreSQL's error code when a new partition would take rows the
/// default partition already holds.
const CHECK_VIOLATION: &str = "23514";

/// One partition of a partitioned table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its table's name, e.g. `deliveries_p20261207`.
    pub name: String,
    /// Its range's start (ms, inclusive); None: from the beginning of time.
    pub from: Option<i64>,
    /// Its range's end (ms, exclusive); None for the default partition.
    pub to: Option<i64>,
    /// Whether it is the default partition (rows no range covers).
    pub default: bool,
}

impl Partition {
    /// Reads a partition bound as PostgreSQL prints it: `DEFAULT`, or
    /// `FOR VALUES FROM ('1') TO ('2')`, `MINVALUE` for an open start.
    fn parse(name: String, bound: &str) -> Partition {
        if bound.trim() == "DEFAULT" {
            return Partition {
                name,
                from: None,
                to: None,
                default: true,
            };
        }
        let (from, to) = bound.split_once(" TO ").unwrap_or((bound, ""));
        let number = |text: &str| {
            let digits: String = text
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            digits.parse::<i64>().ok()
        };
        Partition {
            name,
            from: number(from),
            to: number(to),
            default: false,
        }
    }
}

/// The UTC midnight at or before `ms`.
fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// `<table>_pYYYYMMDD`, the day partition starting on the day of `ms`.
fn day_partition_name(table: &str, ms: i64) -> String {
    let day = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{table}_p{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The partitions of `table`, oldest range first, the default last.
pub(crate) async fn list(pool: &PgPool, table: &str) -> Result<Vec<Partition>> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass($1)",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let mut partitions = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("name")?;
        let bound: String = row.try_get("bound")?;
        partitions.push(Partition::parse(name, &bound));
    }
    partitions.sort_by_key(|p| (p.default, p.from.unwrap_or(i64::MIN)));
    Ok(partitions)
}

/// The day partitions `table` lacks so that days up to `until` are covered,
/// as (from, to): from the end of its last range (or today's start), one
/// per UTC day.
fn missing_days(partitions: &[Partition], now: i64, until: i64) -> Vec<(i64, i64)> {
    let mut from = partitions
        .iter()
        .filter_map(|p| p.to.filter(|_| !p.default))
        .max()
        .unwrap_or_else(|| day_start(now));
    let mut missing = Vec::new();
    while from < until {
        let to = day_start(from) + DAY_MS;
        missing.push((from, to));
        from = to;
    }
    missing
}

/// Creates the day partitions of every partitioned table through
/// [`DAYS_AHEAD`] days after `now`; returns how many it created. Several
/// gateways may call it at once: one creates, the others find them there.
pub(crate) async fn create_ahead(pool: &PgPool, now: i64) -> Result<usize> {
    let until = day_start(now) + (DAYS_AHEAD + 1) * DAY_MS;
    let mut created = 0;
    for table in PARTITIONED {
        let mut tx = begin_short_waits(pool).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('changewire partitions', 0))")
            .execute(&mut *tx)
            .await?;
        let partitions = list(pool, table).await?;
        for (from, to) in missing_days(&partitions, now, until) {
            let name = day_partition_name(table, from);
            let storage = if table == "deliveries" {
                // Room on each page for the updates a delivery goes through
                // (lease, outcome) to stay on it (HOT), as before partitioning.
                " WITH (fillfactor = 85)"
            } else {
                ""
            };
            // A day whose rows already went to the default partition (the
            // gateway could not create it in time) stays there: the
            // partition cannot be created over them, the days after can.
            sqlx::query("SAVEPOINT day").execute(&mut *tx).await?;
            let made = sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE \"{name}\" PARTITION OF {table} FOR VALUES FROM ({from}) TO ({to}){storage}"
            )))
            .execute(&mut *tx)
            .await;
            match made {
                Ok(_) => {
                    sqlx::query("RELEASE SAVEPOINT day")
                        .execute(&mut *tx)
                        .await?;
                    created += 1;
                }
                Err(sqlx::Error::Database(err))
                    if err.code().as_deref() == Some(CHECK_VIOLATION) =>
                {
                    sqlx::query("ROLLBACK TO SAVEPOINT day")
                        .execute(&mut *tx)
                        .await?;
                    tracing::warn!(partition = %name, "rows of this day are in the default partition already; \
                        they stay there and are pruned row by row");
                }
                Err(err) => return Err(err.into()),
            }
        }
        tx.commit().await?;
    }
    Ok(created)
}

/// A time no pending delivery was created before, as loose as is cheap:
/// the start of the oldest partition of `deliveries` holding a pending row
/// (each checked through its partial index of pending rows), never later
/// than yesterday's start (room for a gateway whose clock is behind, around
/// midnight); `i64::MIN` when the default partition or the one from before
/// partitioning holds pending rows.
pub(crate) async fn pending_floor(pool: &PgPool, now: i64) -> Result<i64> {
    let horizon = day_start(now) - DAY_MS;
    let mut partitions = list(pool, "deliveries").await?;
    // The default partition first: its rows may be of any time.
    partitions.sort_by_key(|p| (!p.default, p.from.unwrap_or(i64::MIN)));
    for p in partitions {
        if p.from.is_some_and(|from| from >= horizon) {
            break;
        }
        let pending: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM \"{}\" WHERE status = 'pending')",
            p.name
        )))
        .fetch_one(pool)
        .await?;
        if pending {
            return Ok(if is_day(&p) {
                p.from.unwrap_or(i64::MIN)
            } else {
                i64::MIN
            });
        }
    }
    Ok(horizon)
}

/// A day partition (not the default, not the one from before the upgrade).
pub(super) fn is_day(p: &Partition) -> bool {
    !p.default && p.from.is_some()
}

impl Store {
    /// The partitions of a partitioned table (`changes`, `deliveries`,
    /// `attempts`), oldest first; empty on SQLite, which is not partitioned.
    pub async fn partitions(&self, table: &str) -> Result<Vec<Partition>> {
        match self.backend() {
            Backend::Postgres(pool) => list(pool, table).await,
            Backend::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// Creates the day partitions due by `now` and [`DAYS_AHEAD`] days
    /// after (PostgreSQL; nothing on SQLite). Returns how many it created.
    pub async fn create_partitions_ahead(&self, now: i64) -> Result<usize> {
        match self.backend() {
            Backend::Postgres(pool) => create_ahead(pool, now).await,
            Backend::Sqlite(_) => Ok(0),
        }
    }

    /// Drops the day partitions retention no longer needs (see
    /// [`drop_expired`]; PostgreSQL; nothing on SQLite).
    pub async fn drop_expired_partitions(&self, cutoff: i64) -> Result<Dropped> {
        match self.backend() {
            Backend::Postgres(pool) => drop_expired(pool, cutoff).await,
            Backend::Sqlite(_) => Ok(Dropped::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_read_as_postgresql_prints_them() {
        let p = Partition::parse(
            "deliveries_p20261207".into(),
            "FOR VALUES FROM ('1796601600000') TO ('1796688000000')",
        );
        assert_eq!(
            (p.from, p.to, p.default),
            (Some(1_796_601_600_000), Some(1_796_688_000_000), false)
        );
        let before = Partition::parse(
            "deliveries_before".into(),
            "FOR VALUES FROM (MINVALUE) TO ('5')",
        );
        assert_eq!((before.from, before.to), (None, Some(5)));
        let default = Partition::parse("deliveries_default".into(), "DEFAULT");
        assert!(default.default);
        assert_eq!(default.to, None);
    }

    #[test]
    fn days_are_added_from_the_last_range_to_the_horizon() {
        let now = 1_796_650_000_000; // 2026-12-07, mid-day UTC
        let today = day_start(now);
        assert_eq!(day_partition_name("changes", today), "changes_p20261207");
        // A new install: today and the days after.
        let fresh = missing_days(&[], now, today + 2 * DAY_MS);
        assert_eq!(
            fresh,
            vec![
                (today, today + DAY_MS),
                (today + DAY_MS, today + 2 * DAY_MS)
            ]
        );
        // An upgraded store: from the upgrade's boundary to the next midnight, then whole days.
        let before = Partition {
            name: "changes_before".into(),
            from: None,
            to: Some(now),
            default: false,
        };
        let default = Partition {
            name: "changes_default".into(),
            from: None,
            to: None,
            default: true,
        };
        let upgraded = missing_days(&[before, default], now, today + 2 * DAY_MS);
        assert_eq!(upgraded.first(), Some(&(now, today + DAY_MS)));
        assert_eq!(upgraded.len(), 2);
        // Nothing to add once the horizon is covered.
        let covered = Partition {
            name: "x".into(),
            from: Some(today),
            to: Some(today + 2 * DAY_MS),
            default: false,
        };
        assert!(missing_days(&[covered], now, today + 2 * DAY_MS).is_empty());
    }
}
