//! `plugins`: the WebAssembly plugin attached to a receiver (at most one).

use super::{Result, Store, new_etag, now_ms, on_pool};
use crate::model::ReceiverId;

/// An attached plugin.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginRow {
    /// Id.
    pub id: i64,
    /// Receiver.
    pub receiver_id: ReceiverId,
    /// Name.
    pub name: String,
    /// SHA-256 of the module, hex.
    pub sha256: String,
    /// The module.
    pub wasm: Vec<u8>,
    /// Configuration (JSON text).
    pub config: String,
    /// Attached (ms).
    pub created_at: i64,
    /// Changes at every attach: the revision a delivery must be
    /// transformed by (leases read it).
    pub revision: String,
}

/// One attached plugin's receiver and revision (no module bytes).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct PluginIndexEntry {
    /// The receiver.
    pub(crate) receiver_id: ReceiverId,
    /// The attached revision.
    pub(crate) revision: String,
}

/// A receiver's plugin without its module: what a page shows.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct PluginSummary {
    /// Its name.
    pub(crate) name: String,
    /// SHA-256 of the module.
    pub(crate) sha256: String,
    /// Attached (ms).
    pub(crate) created_at: i64,
}

impl Store {
    /// Attaches (or replaces) a receiver's plugin.
    pub async fn attach_plugin(
        &self,
        receiver_id: ReceiverId,
        name: &str,
        sha256: &str,
        wasm: &[u8],
        config: &str,
    ) -> Result<PluginRow> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, PluginRow>(
            "INSERT INTO plugins (receiver_id, name, sha256, wasm, config, created_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (receiver_id) DO UPDATE SET name = excluded.name, sha256 = excluded.sha256, \
             wasm = excluded.wasm, config = excluded.config, created_at = excluded.created_at, revision = excluded.revision \
             RETURNING id, receiver_id, name, sha256, wasm, config, created_at, revision"
        )
        .bind(receiver_id)
        .bind(name)
        .bind(sha256)
        .bind(wasm)
        .bind(config)
        .bind(now_ms())
        .bind(new_etag())
        .fetch_one(pool)
        .await
        })?)
    }

    /// Detaches a receiver's plugin; false if it had none.
    pub(crate) async fn detach_plugin(&self, receiver_id: ReceiverId) -> Result<bool> {
        let done = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM plugins WHERE receiver_id = $1"
        )
        .bind(receiver_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// A receiver's plugin.
    pub(crate) async fn plugin_for(&self, receiver_id: ReceiverId) -> Result<Option<PluginRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, PluginRow>(
            "SELECT id, receiver_id, name, sha256, wasm, config, created_at, revision FROM plugins WHERE receiver_id = $1"
        )
        .bind(receiver_id)
        .fetch_optional(pool)
        .await
        })?)
    }

    /// Every attached plugin's receiver and revision (no module bytes).
    pub(crate) async fn plugin_index(&self) -> Result<Vec<PluginIndexEntry>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, PluginIndexEntry>(
                "SELECT receiver_id, revision FROM plugins ORDER BY receiver_id",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// The receiver's plugin, if any, without reading its module.
    pub(crate) async fn plugin_summary(
        &self,
        receiver_id: ReceiverId,
    ) -> Result<Option<PluginSummary>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, PluginSummary>(
                "SELECT name, sha256, created_at FROM plugins WHERE receiver_id = $1",
            )
            .bind(receiver_id)
            .fetch_optional(pool)
            .await
        })?)
    }
}
