//! `console_sessions`: the console's magic links and sign-in sessions, kept
//! as SHA-256 hashes of their tokens (the tokens themselves are never stored).

use super::{Result, Store, now_ms, on_pool};
use crate::model::ReceiverId;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsoleTokenKind {
    /// A single-use link that opens a session.
    Link,
    /// A signed-in browser (the cookie).
    Session,
}

impl ConsoleTokenKind {
    fn as_str(self) -> &'static str {
        match self {
            ConsoleTokenKind::Link => "link",
            ConsoleTokenKind::Session => "session",
        }
    }
}

/// A link or session to store.
#[derive(Debug, Clone)]
pub(crate) struct NewConsoleToken<'a> {
    /// Link or session.
    pub(crate) kind: ConsoleTokenKind,
    /// SHA-256 (hex) of the token.
    pub(crate) token_hash: &'a str,
    /// The link a session was opened from.
    pub(crate) link_id: Option<i64>,
    /// `admin` or `viewer`.
    pub(crate) role: &'a str,
    /// The one receiver it may see; `None`: every receiver.
    pub(crate) receiver_id: Option<ReceiverId>,
    /// The CSRF token its forms carry.
    pub(crate) csrf_token: &'a str,
    /// Who made it (for the audit of who opened what).
    pub(crate) created_by: &'a str,
    /// Expiry (ms).
    pub(crate) expires_at: i64,
}

/// A stored link or session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct ConsoleTokenRow {
    /// Id.
    pub(crate) id: i64,
    /// `admin` or `viewer`.
    pub(crate) role: String,
    /// The one receiver it may see.
    pub(crate) receiver_id: Option<ReceiverId>,
    /// The CSRF token its forms carry.
    pub(crate) csrf_token: String,
    /// Who made it.
    pub(crate) created_by: String,
    /// Expiry (ms).
    pub(crate) expires_at: i64,
}

const COLUMNS: &str = "id, role, receiver_id, csrf_token, created_by, expires_at";

impl Store {
    /// Stores a link or a session.
    pub(crate) async fn insert_console_token(
        &self,
        new: &NewConsoleToken<'_>,
    ) -> Result<ConsoleTokenRow> {
        let sql = format!(
            "INSERT INTO console_sessions (token_hash, kind, link_id, role, receiver_id, csrf_token, \
             created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ConsoleTokenRow>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(new.token_hash)
                .bind(new.kind.as_str())
                .bind(new.link_id)
                .bind(new.role)
                .bind(new.receiver_id)
                .bind(new.csrf_token)
                .bind(new.created_by)
                .bind(now_ms())
                .bind(new.expires_at)
                .fetch_one(pool)
                .await
        })?)
    }

    /// Uses a link: marks it used and returns it, once. A link that was
    /// used, revoked or has expired gives `None`.
    pub(crate) async fn redeem_console_link(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleTokenRow>> {
        let now = now_ms();
        let sql = format!(
            "UPDATE console_sessions SET used_at = $2 WHERE token_hash = $1 AND kind = 'link' \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2 RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ConsoleTokenRow>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// The live session with this token hash.
    pub(crate) async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleTokenRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM console_sessions WHERE token_hash = $1 AND kind = 'session' \
             AND revoked_at IS NULL AND expires_at > $2"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ConsoleTokenRow>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(token_hash)
                .bind(now_ms())
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Revokes a link or session, and every session opened from it.
    /// Returns whether anything live was revoked.
    pub(crate) async fn revoke_console_token(&self, id: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE console_sessions SET revoked_at = $2 WHERE (id = $1 OR link_id = $1) AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Ends the session with this token hash (signing out).
    pub(crate) async fn end_console_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE console_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL"
        )
        .bind(token_hash)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes links and sessions that ended before `cutoff` (ms).
    pub(crate) async fn prune_console_tokens(&self, cutoff: i64) -> Result<u64> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "DELETE FROM console_sessions WHERE expires_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM console_sessions s WHERE s.link_id = console_sessions.id AND s.expires_at >= $1)"
        )
        .bind(cutoff)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}
