//! `receivers` and `receiver_headers`.

use sqlx::AssertSqlSafe;

use super::{Error, Result, Store, is_unique_violation, new_etag, now_ms, on_pool};
use crate::model::{NewReceiver, ReceiverId, ReceiverSettings};
use crate::secrets::StoredSigningKey;

/// Binds a [`ReceiverSettings`]' columns, in [`SETTINGS_COLUMNS`]' order:
/// the one binding shared by the insert and the update.
macro_rules! bind_settings {
    ($query:expr, $s:expr) => {
        $query
            .bind(&$s.name)
            .bind(&$s.description)
            .bind(&$s.webhook_uri)
            .bind(&$s.content_type)
            .bind($s.expected_response_code)
            .bind($s.active)
            .bind($s.timeout_ms)
            .bind($s.retry_policy)
            .bind($s.max_attempts)
            .bind($s.retry_interval_secs)
            .bind($s.signature_schemes)
            .bind(&$s.basic_auth_username)
            .bind(&$s.basic_auth_password)
            .bind($s.ordered)
            .bind($s.max_concurrency)
            .bind($s.plugin_failure_mode)
            .bind($s.rate_limit_per_second)
            .bind(&$s.egress.tls_client_certificate)
            .bind(&$s.egress.tls_client_key)
            .bind(&$s.egress.tls_ca_bundle)
            .bind(&$s.egress.oauth2_token_url)
            .bind(&$s.egress.oauth2_client_id)
            .bind(&$s.egress.oauth2_client_secret)
            .bind(&$s.egress.oauth2_scope)
            .bind($s.egress.send_traceparent)
    };
}

/// The settings' columns, in [`bind_settings!`]'s order.
const SETTINGS_COLUMNS: [&str; 25] = [
    "name",
    "description",
    "webhook_uri",
    "content_type",
    "expected_response_code",
    "active",
    "timeout_ms",
    "retry_policy",
    "max_attempts",
    "retry_interval_secs",
    "signature_schemes",
    "basic_auth_username",
    "basic_auth_password",
    "ordered",
    "max_concurrency",
    "plugin_failure_mode",
    "rate_limit_per_second",
    "tls_client_certificate",
    "tls_client_key",
    "tls_ca_bundle",
    "oauth2_token_url",
    "oauth2_client_id",
    "oauth2_client_secret",
    "oauth2_scope",
    "send_traceparent",
];

/// A receiver as stored (secrets as stored: possibly sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceiverRow {
    /// Its id.
    pub id: ReceiverId,
    /// What a client sets.
    #[sqlx(flatten)]
    pub settings: ReceiverSettings,
    /// The current shared secret (stored form).
    pub shared_secret: String,
    /// The previous secret during a rotation's overlap (stored form).
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing (ms).
    pub previous_secret_expires_at: Option<i64>,
    /// Paused, by hand or by the circuit breaker.
    pub paused: bool,
    /// Why it is paused.
    pub paused_reason: Option<String>,
    /// The circuit breaker's next probe (ms), while its circuit is open.
    pub circuit_open_until: Option<i64>,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// Times the circuit opened since the last success (the probe backoff).
    pub circuit_trips: i32,
    /// When its current streak of failed attempts began (ms).
    pub failing_since: Option<i64>,
    /// The Ed25519 signing key (`whsk_…`, stored form: possibly sealed).
    pub signing_key: Option<String>,
    /// Its public key (`whpk_…`).
    pub public_key: Option<String>,
    /// The previous signing key during a rotation's overlap (stored form).
    pub previous_signing_key: Option<String>,
    /// The previous public key.
    pub previous_public_key: Option<String>,
    /// The id of the API key that created it (`admin` for the bootstrap token).
    pub created_by_id: Option<String>,
    /// That key's name.
    pub created_by_name: Option<String>,
    /// Optimistic-concurrency tag.
    pub etag: String,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
}

/// Who made a change.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Key id (`admin` for the bootstrap token).
    pub id: String,
    /// Key name.
    pub name: String,
}

const COLUMNS: &str = "id, name, description, webhook_uri, content_type, expected_response_code, active, \
    timeout_ms, retry_policy, max_attempts, retry_interval_secs, signature_schemes, basic_auth_username, \
    basic_auth_password, ordered, max_concurrency, plugin_failure_mode, rate_limit_per_second, tls_client_certificate, tls_client_key, tls_ca_bundle, \
    oauth2_token_url, oauth2_client_id, oauth2_client_secret, oauth2_scope, send_traceparent, shared_secret, previous_secret, \
    previous_secret_expires_at, paused, paused_reason, circuit_open_until, consecutive_failures, circuit_trips, \
    failing_since, signing_key, public_key, previous_signing_key, previous_public_key, created_by_id, created_by_name, etag, created_at, updated_at";

impl Store {
    /// Stores a new receiver and its custom headers in one transaction: a
    /// header that cannot be written leaves no receiver behind.
    pub async fn create_receiver(
        &self,
        new: &NewReceiver,
        sealed_secret: &str,
        by: &Actor,
    ) -> Result<ReceiverRow> {
        let now = now_ms();
        let n = SETTINGS_COLUMNS.len();
        let sql = format!(
            "INSERT INTO receivers ({}, shared_secret, created_by_id, created_by_name, etag, created_at, updated_at, \
             signing_key, public_key) \
             VALUES ({}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}) RETURNING {COLUMNS}",
            SETTINGS_COLUMNS.join(", "),
            (1..=n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", "),
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 5,
            n + 6,
            n + 7,
        );
        let result = on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let row = bind_settings!(
                    sqlx::query_as::<_, ReceiverRow>(AssertSqlSafe(sql.as_str())),
                    new.settings
                )
                .bind(sealed_secret)
                .bind(&by.id)
                .bind(&by.name)
                .bind(new_etag())
                .bind(now)
                .bind(new.signing_key.as_ref().map(|k| &k.sealed))
                .bind(new.signing_key.as_ref().map(|k| &k.public))
                .fetch_one(&mut *tx)
                .await?;
                for (key, value) in &new.headers {
                    sqlx::query(
                        "INSERT INTO receiver_headers (receiver_id, key, key_lower, value, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(row.id)
                    .bind(key)
                    .bind(key.to_ascii_lowercase())
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok::<ReceiverRow, sqlx::Error>(row)
            }
            .await
        });
        match result {
            Ok(row) => Ok(row),
            Err(e) if is_unique_violation(&e) => Err(Error::Duplicate(
                "two headers share a name (names are case-insensitive); nothing was created".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// One receiver.
    pub async fn receiver(&self, id: ReceiverId) -> Result<Option<ReceiverRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receivers WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ReceiverRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// A page of receivers with ids above `after`, ascending.
    pub async fn receivers_page(&self, after: i64, limit: i64) -> Result<Vec<ReceiverRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receivers WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ReceiverRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    /// Every receiver changed at or after `since` (ms), for caches.
    pub(crate) async fn receivers_changed_since(&self, since: i64) -> Result<Vec<ReceiverRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receivers WHERE updated_at >= $1 ORDER BY id");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ReceiverRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(since)
        .fetch_all(pool)
        .await)?)
    }

    /// All receiver ids (to notice deletions).
    pub(crate) async fn receiver_ids(&self) -> Result<Vec<ReceiverId>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, ReceiverId>(
            "SELECT id FROM receivers ORDER BY id"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Number of receivers.
    pub async fn receiver_count(&self) -> Result<i64> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM receivers"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// Resolves a failed etag-guarded write into NotFound or Conflict.
    async fn etag_failure(&self, entity: &'static str, table: &str, id: i64, given: &str) -> Error {
        let sql = format!("SELECT etag FROM {table} WHERE id = $1");
        let current: Result<Option<String>, sqlx::Error> =
            on_pool!(self, |pool| sqlx::query_scalar::<_, String>(AssertSqlSafe(
                sql.as_str()
            ))
            .bind(id)
            .fetch_optional(pool)
            .await);
        match current {
            Ok(Some(current)) => Error::Conflict {
                entity,
                id,
                given: given.to_string(),
                current,
            },
            Ok(None) => Error::NotFound { entity, id },
            Err(e) => Error::Database(e),
        }
    }

    /// Replaces a receiver's settings if `etag` is current.
    pub(crate) async fn update_receiver(
        &self,
        id: ReceiverId,
        etag: &str,
        settings: &ReceiverSettings,
    ) -> Result<ReceiverRow> {
        let n = SETTINGS_COLUMNS.len();
        let assignments: Vec<String> = SETTINGS_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE receivers SET {}, etag = ${}, updated_at = ${} WHERE id = ${} AND etag = ${} RETURNING {COLUMNS}",
            assignments.join(", "),
            n + 1,
            n + 2,
            n + 3,
            n + 4,
        );
        let row = on_pool!(self, |pool| bind_settings!(
            sqlx::query_as::<_, ReceiverRow>(AssertSqlSafe(sql.as_str())),
            settings
        )
        .bind(new_etag())
        .bind(now_ms())
        .bind(id)
        .bind(etag)
        .fetch_optional(pool)
        .await)?;
        match row {
            Some(row) => Ok(row),
            None => Err(self
                .etag_failure("receiver", "receivers", id.get(), etag)
                .await),
        }
    }

    /// Deletes a receiver (and its subscriptions, headers, deliveries and
    /// their attempts) if `etag` is current.
    pub async fn delete_receiver(&self, id: ReceiverId, etag: &str) -> Result<()> {
        let done = match self.backend() {
            // The receiver row is locked first, so no fan-out adds a delivery
            // meanwhile (its foreign-key check waits for this lock). Its
            // deliveries go next: a recorder busy with one of them holds its
            // row lock, so this waits for it to commit, and the attempts
            // are deleted by a later statement, whose snapshot includes
            // what that recorder wrote. No attempt outlives its delivery.
            // The deliveries are locked in ascending id order first, the
            // order the recorder locks a batch in: whichever order the
            // delete's plan visits them in, the two never wait on each
            // other in a circle (a deadlock).
            super::Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM receivers WHERE id = $1 AND etag = $2 FOR UPDATE",
                )
                .bind(id)
                .bind(etag)
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_some() {
                    sqlx::query(
                        "SELECT id FROM deliveries WHERE receiver_id = $1 ORDER BY id FOR UPDATE",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    let gone: Vec<i64> = sqlx::query_scalar(
                        "DELETE FROM deliveries WHERE receiver_id = $1 RETURNING id",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM attempts WHERE delivery_id = ANY($1)")
                        .bind(&gone)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM receivers WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                found.is_some()
            }
            // One writer at a time, and attempts cascade from deliveries.
            super::Backend::Sqlite(pool) => {
                sqlx::query("DELETE FROM receivers WHERE id = $1 AND etag = $2")
                    .bind(id)
                    .bind(etag)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
        };
        if done {
            Ok(())
        } else {
            Err(self
                .etag_failure("receiver", "receivers", id.get(), etag)
                .await)
        }
    }

    /// Installs a new secret; the old one keeps signing until `previous_expires_at`.
    /// Replaces the shared secret and the signing key pair; with
    /// `previous` (the old secret and when it stops), the old secret and
    /// the old key pair keep signing until then.
    pub(crate) async fn rotate_receiver_secret(
        &self,
        id: ReceiverId,
        etag: &str,
        new_secret: &str,
        new_key: &StoredSigningKey,
        previous: Option<(&str, i64)>,
    ) -> Result<ReceiverRow> {
        let sql = format!(
            "UPDATE receivers SET shared_secret = $3, previous_secret = $4, previous_secret_expires_at = $5, \
             previous_signing_key = CASE WHEN $4 IS NULL THEN NULL ELSE signing_key END, \
             previous_public_key = CASE WHEN $4 IS NULL THEN NULL ELSE public_key END, \
             signing_key = $8, public_key = $9, \
             etag = $6, updated_at = $7 WHERE id = $1 AND etag = $2 RETURNING {COLUMNS}"
        );
        let row = on_pool!(self, |pool| sqlx::query_as::<_, ReceiverRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .bind(etag)
        .bind(new_secret)
        .bind(previous.map(|p| p.0))
        .bind(previous.map(|p| p.1))
        .bind(new_etag())
        .bind(now_ms())
        .bind(&new_key.sealed)
        .bind(&new_key.public)
        .fetch_optional(pool)
        .await)?;
        match row {
            Some(row) => Ok(row),
            None => Err(self
                .etag_failure("receiver", "receivers", id.get(), etag)
                .await),
        }
    }

    /// Gives every receiver stored without a signing key (created before
    /// Ed25519 signatures existed) a new key pair. Returns how many.
    pub(crate) async fn add_missing_signing_keys(
        &self,
        secrets: &crate::secrets::SecretBox,
    ) -> Result<u64> {
        let ids: Vec<ReceiverId> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM receivers WHERE signing_key IS NULL ORDER BY id"
        )
        .fetch_all(pool)
        .await)?;
        let mut added = 0;
        for id in ids {
            let key = secrets.new_signing_key();
            // Another gateway may be doing the same: the first key stays.
            added += on_pool!(self, |pool| {
                sqlx::query(
                "UPDATE receivers SET signing_key = $2, public_key = $3 WHERE id = $1 AND signing_key IS NULL"
            )
            .bind(id)
            .bind(&key.sealed)
            .bind(&key.public)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            })?;
        }
        Ok(added)
    }

    /// Pauses (with a reason) or resumes a receiver. Resuming also closes the
    /// circuit and forgets past failures. `etag`: None skips the check (used by
    /// the circuit breaker itself).
    pub async fn set_receiver_paused(
        &self,
        id: ReceiverId,
        etag: Option<&str>,
        paused: bool,
        reason: Option<&str>,
    ) -> Result<ReceiverRow> {
        let sql = format!(
            "UPDATE receivers SET paused = $3, paused_reason = $4, circuit_open_until = NULL, \
             consecutive_failures = CASE WHEN $3 THEN consecutive_failures ELSE 0 END, \
             circuit_trips = CASE WHEN $3 THEN circuit_trips ELSE 0 END, \
             failing_since = CASE WHEN $3 THEN failing_since ELSE NULL END, etag = $5, updated_at = $6 \
             WHERE id = $1 AND ($2 IS NULL OR etag = $2) RETURNING {COLUMNS}"
        );
        let row = on_pool!(self, |pool| sqlx::query_as::<_, ReceiverRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .bind(etag)
        .bind(paused)
        .bind(reason)
        .bind(new_etag())
        .bind(now_ms())
        .fetch_optional(pool)
        .await)?;
        match row {
            Some(row) => Ok(row),
            None => Err(self
                .etag_failure("receiver", "receivers", id.get(), etag.unwrap_or(""))
                .await),
        }
    }
}
