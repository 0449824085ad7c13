//! `api_keys`: bearer tokens, stored as SHA-256 hashes.

use super::{Result, Store, now_ms, on_pool};

/// An API key (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// First characters of the token, to recognise it.
    pub token_prefix: String,
    /// Created (ms).
    pub created_at: i64,
    /// Revoked (ms).
    pub revoked_at: Option<i64>,
    /// Last used (ms, updated at most once a minute).
    pub last_used_at: Option<i64>,
}

impl Store {
    /// Stores a key by its token's hash.
    pub async fn insert_api_key(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        prefix: &str,
    ) -> Result<ApiKeyRow> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ApiKeyRow>(
            "INSERT INTO api_keys (name, role, token_hash, token_prefix, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, name, role, token_prefix, created_at, revoked_at, last_used_at"
        )
        .bind(name)
        .bind(role)
        .bind(token_hash)
        .bind(prefix)
        .bind(now_ms())
        .fetch_one(pool)
        .await
        })?)
    }

    /// The live (not revoked) key with this token hash; notes its use.
    pub(crate) async fn api_key_by_hash(&self, token_hash: &str) -> Result<Option<ApiKeyRow>> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, ApiKeyRow>(
            "SELECT id, name, role, token_prefix, created_at, revoked_at, last_used_at FROM api_keys \
             WHERE token_hash = $1 AND revoked_at IS NULL"
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await
        })?;
        if let Some(key) = &row {
            let now = now_ms();
            if key.last_used_at.is_none_or(|t| now - t > 60_000) {
                on_pool!(self, |pool| sqlx::query(
                    "UPDATE api_keys SET last_used_at = $2 WHERE id = $1"
                )
                .bind(key.id)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
            }
        }
        Ok(row)
    }

    /// Every key, oldest first.
    pub(crate) async fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ApiKeyRow>(
            "SELECT id, name, role, token_prefix, created_at, revoked_at, last_used_at FROM api_keys ORDER BY id"
        )
        .fetch_all(pool)
        .await
        })?)
    }

    /// Revokes a key; false if it does not exist or was already revoked.
    pub async fn revoke_api_key(&self, id: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}
