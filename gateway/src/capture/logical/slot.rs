//! The publication and the replication slot: install, check, watch, drop.

use std::time::Duration;

use pgwire_replication::{ReplicationConfig, TlsConfig};
use sqlx::{AssertSqlSafe, PgPool};

use crate::capture::Error;
use crate::capture::sql::quote;
use crate::capture::switch::{publication_name, slot_exists};
use crate::health::Health;
use crate::operational::CaptureProgress;

/// Creates the publication for `tables` (or sets its table list), under
/// the install lock the caller holds in `tx`.
pub(crate) async fn install_publication(
    tx: &mut sqlx::PgConnection,
    schema: &str,
    tables: &[String],
) -> Result<(), Error> {
    let name = publication_name(schema);
    let list = tables
        .iter()
        .map(|t| quote(t))
        .collect::<Vec<_>>()
        .join(", ");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
    // A partitioned table's changes come as the table's, whatever the
    // partition.
    let statements = if exists {
        vec![
            format!("ALTER PUBLICATION {name} SET TABLE {list}"),
            format!(
                "ALTER PUBLICATION {name} SET (publish = 'insert, update, delete', publish_via_partition_root = true)"
            ),
        ]
    } else {
        vec![format!(
            "CREATE PUBLICATION {name} FOR TABLE {list} \
             WITH (publish = 'insert, update, delete', publish_via_partition_root = true)"
        )]
    };
    for sql in statements {
        sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Creates the slot if it does not exist; true if it was created. Runs
/// outside any transaction (PostgreSQL waits there for the transactions
/// in progress to end: the slot's consistent point).
pub(crate) async fn ensure_slot(pool: &PgPool, slot: &str) -> Result<bool, Error> {
    if slot_exists(pool, slot).await? {
        return Ok(false);
    }
    match sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
        .bind(slot)
        .execute(pool)
        .await
    {
        Ok(_) => Ok(true),
        // Another gateway made it in between.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42710") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The replication connection's settings, from the capture URL
/// (`postgres://user:password@host:port/db?sslmode=…&sslrootcert=…`).
pub(crate) fn replication_config(
    url: &str,
    schema: &str,
    slot: &str,
) -> Result<ReplicationConfig, Error> {
    let bad = |reason: String| Error::Protocol(format!("capture URL: {reason}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let decode = |s: &str| {
        percent_decode(s).map_err(|_| bad("a part is not valid percent-encoded UTF-8".into()))
    };
    let query: std::collections::HashMap<String, String> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let host = match query.get("host") {
        Some(h) => h.clone(),
        None => parsed.host_str().unwrap_or("localhost").to_string(),
    };
    // As libpq (and sqlx) read them: the URL, then PG* variables.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let user = match parsed.username() {
        "" => query
            .get("user")
            .cloned()
            .or_else(|| env("PGUSER"))
            .unwrap_or_else(|| "postgres".into()),
        u => decode(u)?,
    };
    let password = match parsed.password() {
        Some(p) => decode(p)?,
        None => query
            .get("password")
            .cloned()
            .or_else(|| env("PGPASSWORD"))
            .unwrap_or_default(),
    };
    let database = match parsed.path().trim_start_matches('/') {
        "" => user.clone(),
        db => decode(db)?,
    };
    let root = query.get("sslrootcert").map(std::path::PathBuf::from);
    let sslmode = query.get("sslmode").cloned().or_else(|| env("PGSSLMODE"));
    let tls = match sslmode.as_deref() {
        Some("disable") => TlsConfig::disabled(),
        // libpq's default: TLS when the server offers it.
        None | Some("allow" | "prefer") => TlsConfig {
            mode: pgwire_replication::SslMode::Prefer,
            ..TlsConfig::default()
        },
        Some("require") => TlsConfig::require(),
        Some("verify-ca") => TlsConfig::verify_ca(root),
        Some("verify-full") => TlsConfig::verify_full(root),
        Some(other) => return Err(bad(format!("sslmode `{other}` is not known"))),
    };
    let mut config = ReplicationConfig::new(
        host,
        user,
        password,
        database,
        slot,
        publication_name(schema),
    )
    .with_port(parsed.port().unwrap_or(5432))
    .with_tls(tls)
    // Confirmed positions reach the server within a second.
    .with_status_interval(Duration::from_secs(1))
    .with_wakeup_interval(Duration::from_secs(5))
    .with_buffer_size(16_384)
    .with_application_name("changewire-capture")
    // Unambiguous text output; the values go back through the input
    // functions, so only the parse matters, not the style.
    .with_options("-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3");
    if let Some(port) = query.get("port").and_then(|p| p.parse().ok()) {
        config = config.with_port(port);
    }
    Ok(config)
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
}

/// Opens a replication connection and identifies the server, so that a
/// setting that works for SQL but not for replication (`pg_hba.conf`'s
/// `replication` lines, the REPLICATION attribute, TLS) fails start-up,
/// before anything is switched.
pub(crate) async fn check_replication(url: &str, schema: &str, slot: &str) -> Result<(), Error> {
    let config = replication_config(url, schema, slot)?;
    let mut client = pgwire_replication::ReplicationClient::connect_gated(config).await?;
    let checked = client.identify_system().await;
    client.abort();
    checked.map(|_| ()).map_err(Error::from)
}

/// The slot as the server reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotStatus {
    /// WAL the slot holds: the server's position minus the confirmed one.
    pub(crate) lag_bytes: i64,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub(crate) wal_status: String,
    /// WAL that can still be written before the slot is invalidated
    /// (`max_slot_wal_keep_size`); `None` when unlimited.
    pub(crate) safe_wal_bytes: Option<i64>,
    /// `max_slot_wal_keep_size` in bytes; `None` when unlimited.
    pub(crate) keep_limit_bytes: Option<i64>,
}

impl SlotStatus {
    /// Reads it; `None` if the slot does not exist.
    pub(crate) async fn read(pool: &PgPool, slot: &str) -> Result<Option<SlotStatus>, Error> {
        type Row = (Option<i64>, Option<String>, Option<i64>, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, wal_status, \
             safe_wal_size, \
             (SELECT setting::bigint * 1024 * 1024 FROM pg_settings WHERE name = 'max_slot_wal_keep_size') \
             FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
        )
        .bind(slot)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|(lag, wal_status, safe, keep)| SlotStatus {
            lag_bytes: lag.unwrap_or(0),
            wal_status: wal_status.unwrap_or_else(|| "unknown".into()),
            safe_wal_bytes: safe,
            keep_limit_bytes: (keep >= 0).then_some(keep),
        }))
    }

    /// Why the slot is in danger, if it is: its WAL is no longer reserved,
    /// or it holds more than `limit` (default: 80% of
    /// `max_slot_wal_keep_size`, or 1 GiB when that is unlimited).
    pub(crate) fn danger(&self, limit: Option<u64>) -> Option<String> {
        if matches!(self.wal_status.as_str(), "unreserved" | "lost") {
            return Some(format!(
                "the replication slot's WAL is {} (max_slot_wal_keep_size reached): \
                 changes may be lost; see the gateway's log",
                self.wal_status
            ));
        }
        // PostgreSQL invalidates by the slot's restart position, which a
        // long transaction holds back while the confirmed one moves on:
        // `safe_wal_size` is what is left before that.
        if let (Some(safe), Some(keep)) = (self.safe_wal_bytes, self.keep_limit_bytes)
            && safe < keep / 5
        {
            return Some(format!(
                "the replication slot is {} MB from max_slot_wal_keep_size ({} MB): capture \
                 or a long transaction holds WAL",
                safe / (1024 * 1024),
                keep / (1024 * 1024)
            ));
        }
        let limit = limit
            .map(|l| i64::try_from(l).unwrap_or(i64::MAX))
            .unwrap_or(match self.keep_limit_bytes {
                Some(keep) => keep / 5 * 4,
                None => 1024 * 1024 * 1024,
            });
        (self.lag_bytes > limit).then(|| {
            format!(
                "the replication slot holds {} MB of WAL (limit {} MB): capture is behind",
                self.lag_bytes / (1024 * 1024),
                limit / (1024 * 1024)
            )
        })
    }
}

/// Every `interval`: a heartbeat through the slot (so that it advances
/// while the mapped tables are idle), then the slot's lag into
/// `/metrics`, `/readyz` and `capture.lagging`.
pub(crate) async fn watch(
    pool: PgPool,
    slot: String,
    interval: Duration,
    limit: Option<u64>,
    health: std::sync::Arc<Health>,
    progress: std::sync::Arc<CaptureProgress>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A transactional message in a transaction of its own: the stream
        // sees a commit, which the importer confirms once everything before
        // it is durable.
        if let Err(err) =
            sqlx::query("SELECT pg_logical_emit_message(true, 'changewire.heartbeat', '')")
                .execute(&pool)
                .await
        {
            tracing::warn!(error = %err, "capture heartbeat failed");
        }
        match SlotStatus::read(&pool, &slot).await {
            Ok(Some(status)) => {
                metrics::gauge!("changewire_capture_slot_lag_bytes").set(status.lag_bytes as f64);
                for state in ["reserved", "extended", "unreserved", "lost"] {
                    metrics::gauge!("changewire_capture_slot_wal_status", "status" => state)
                        .set(if status.wal_status == state { 1.0 } else { 0.0 });
                }
                if let Some(safe) = status.safe_wal_bytes {
                    metrics::gauge!("changewire_capture_slot_safe_wal_bytes").set(safe as f64);
                }
                match status.danger(limit) {
                    Some(reason) => {
                        health.failing("capture_slot", reason.clone());
                        progress.slot_in_danger(Some(reason));
                    }
                    None => {
                        health.ready("capture_slot");
                        progress.slot_in_danger(None);
                    }
                }
            }
            Ok(None) => {
                let reason = "the replication slot is gone (dropped by hand, or invalidated): \
                              restart the gateway to recreate it; changes committed meanwhile \
                              were not captured"
                    .to_string();
                health.failing("capture_slot", reason.clone());
                progress.slot_in_danger(Some(reason));
            }
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "reading the slot's status failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(lag: i64, wal: &str, keep: Option<i64>) -> SlotStatus {
        SlotStatus {
            lag_bytes: lag,
            wal_status: wal.into(),
            safe_wal_bytes: None,
            keep_limit_bytes: keep,
        }
    }

    #[test]
    fn danger_before_the_keep_limit() {
        let gib = 1024 * 1024 * 1024;
        assert_eq!(status(10, "reserved", None).danger(None), None);
        assert!(status(gib + 1, "reserved", None).danger(None).is_some());
        // 80% of max_slot_wal_keep_size, before PostgreSQL invalidates it.
        assert_eq!(
            status(79 * 1024 * 1024, "reserved", Some(100 * 1024 * 1024)).danger(None),
            None
        );
        assert!(
            status(81 * 1024 * 1024, "extended", Some(100 * 1024 * 1024))
                .danger(None)
                .is_some()
        );
        assert!(
            status(0, "unreserved", None)
                .danger(None)
                .unwrap()
                .contains("unreserved")
        );
        assert!(status(0, "lost", None).danger(None).is_some());
        // An explicit limit wins.
        assert!(status(2048, "reserved", None).danger(Some(1024)).is_some());
        // A long transaction holds the restart position back: what is left
        // before invalidation decides, whatever the confirmed lag.
        let mut held = status(0, "reserved", Some(100 * 1024 * 1024));
        held.safe_wal_bytes = Some(10 * 1024 * 1024);
        assert!(
            held.danger(None).unwrap().contains("10 MB from"),
            "{held:?}"
        );
        held.safe_wal_bytes = Some(50 * 1024 * 1024);
        assert_eq!(held.danger(None), None);
    }

    #[test]
    fn replication_settings_from_the_url() {
        let c = replication_config(
            "postgres://app%40x:p%2Fw@db.example:6543/shop?sslmode=require",
            "changewire",
            "changewire_0123",
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("db.example", 6543));
        assert_eq!((c.user.as_str(), c.password.as_str()), ("app@x", "p/w"));
        assert_eq!(c.database, "shop");
        assert_eq!(c.slot, "changewire_0123");
        assert!(c.tls.mode.requires_tls());
        let d = replication_config("postgres://127.0.0.1/app", "cw", "cw_1").unwrap();
        assert_eq!((d.user.as_str(), d.port), ("postgres", 5432));
        assert!(!d.tls.mode.requires_tls(), "prefer: TLS only if offered");
        assert_eq!(d.tls.mode, pgwire_replication::SslMode::Prefer);
        let err =
            replication_config("postgres://h/db?sslmode=sometimes", "cw", "cw_1").unwrap_err();
        assert!(err.to_string().contains("sslmode `sometimes`"), "{err}");
    }
}
