//! `receiver_headers`: custom headers sent with every delivery to a
//! receiver. Values are stored sealed (see [`Store::seal_plain_secrets`]).

use sqlx::AssertSqlSafe;

use super::{Error, Result, Store, is_unique_violation, new_etag, now_ms, on_pool};
use crate::model::ReceiverId;

/// A custom header.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HeaderRow {
    /// Its id.
    pub id: i64,
    /// Whose.
    pub receiver_id: ReceiverId,
    /// Name as given.
    pub key: String,
    /// Value, in its stored form (sealed when a secret key is configured).
    pub value: String,
}

impl Store {
    /// Adds a custom header (names unique per receiver, case-insensitively);
    /// `value` is its stored form (sealed). With `replace`, a header of the
    /// same name gets the new name and value instead of being refused.
    pub(crate) async fn add_receiver_header(
        &self,
        receiver_id: ReceiverId,
        key: &str,
        value: &str,
        replace: bool,
    ) -> Result<HeaderRow> {
        let on_conflict = if replace {
            "ON CONFLICT (receiver_id, key_lower) DO UPDATE SET key = excluded.key, value = excluded.value"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO receiver_headers (receiver_id, key, key_lower, value, created_at) \
             VALUES ($1, $2, $3, $4, $5) {on_conflict} RETURNING id, receiver_id, key, value"
        );
        let result = on_pool!(self, |pool| sqlx::query_as::<_, HeaderRow>(AssertSqlSafe(
            sql.as_str()
        ))
        .bind(receiver_id)
        .bind(key)
        .bind(key.to_ascii_lowercase())
        .bind(value)
        .bind(now_ms())
        .fetch_one(pool)
        .await);
        match result {
            Ok(row) => {
                self.touch_receiver(receiver_id).await?;
                Ok(row)
            }
            Err(e) if is_unique_violation(&e) => Err(Error::Duplicate(format!(
                "receiver {receiver_id} already has a header named `{key}`; pass `replace: true` to replace it"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a custom header; returns its receiver.
    pub(crate) async fn remove_receiver_header(&self, header_id: i64) -> Result<ReceiverId> {
        let receiver: Option<ReceiverId> =
            on_pool!(self, |pool| sqlx::query_scalar::<_, ReceiverId>(
                "DELETE FROM receiver_headers WHERE id = $1 RETURNING receiver_id"
            )
            .bind(header_id)
            .fetch_optional(pool)
            .await)?;
        let receiver = receiver.ok_or(Error::NotFound {
            entity: "header",
            id: header_id,
        })?;
        self.touch_receiver(receiver).await?;
        Ok(receiver)
    }

    /// New etag and updated_at, so caches and clients see a change.
    async fn touch_receiver(&self, id: ReceiverId) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE receivers SET etag = $2, updated_at = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(new_etag())
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Custom headers of one receiver, in creation order.
    pub async fn receiver_headers(&self, receiver_id: ReceiverId) -> Result<Vec<HeaderRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, HeaderRow>(
            "SELECT id, receiver_id, key, value FROM receiver_headers WHERE receiver_id = $1 ORDER BY id"
        )
        .bind(receiver_id)
        .fetch_all(pool)
        .await
        })?)
    }
}

/// Columns that hold secrets in their stored (possibly sealed) form.
const SECRET_COLUMNS: &[(&str, &str)] = &[
    ("receivers", "shared_secret"),
    ("receivers", "previous_secret"),
    ("receivers", "basic_auth_password"),
    ("receivers", "signing_key"),
    ("receivers", "previous_signing_key"),
    ("receivers", "tls_client_certificate"),
    ("receivers", "tls_client_key"),
    ("receivers", "oauth2_client_secret"),
    ("receiver_headers", "value"),
];

impl Store {
    /// Encrypts every secret still stored in clear (written before a
    /// secret key was configured): shared secrets, signing keys, Basic-auth
    /// passwords, client certificates and keys, OAuth2 client secrets and
    /// custom header values. Returns how many values were sealed. A value
    /// changed meanwhile by someone else is left to its new writer.
    pub(crate) async fn seal_plain_secrets(
        &self,
        secrets: &crate::secrets::SecretBox,
    ) -> Result<u64> {
        if !secrets.encrypts() {
            return Ok(0);
        }
        let mut sealed = 0;
        for (table, column) in SECRET_COLUMNS {
            let select = format!(
                "SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE 'enc:v1:%'"
            );
            let plain: Vec<(i64, String)> =
                on_pool!(self, |pool| sqlx::query_as::<_, (i64, String)>(
                    AssertSqlSafe(select.as_str())
                )
                .fetch_all(pool)
                .await)?;
            let update =
                format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3");
            for (id, value) in plain {
                sealed += on_pool!(self, |pool| sqlx::query(AssertSqlSafe(update.as_str()))
                    .bind(secrets.seal(&value))
                    .bind(id)
                    .bind(&value)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
        }
        Ok(sealed)
    }
}
