//! The change payload: what one row change (captured by a trigger or
//! published through the API) carries from the moment it is read to the
//! body a receiver gets. It has one home, here; the store's rows embed it
//! (`#[sqlx(flatten)]`), capture and the publisher build it, and
//! [`render`] writes it as ION's envelope.
//!
//! ```text
//! trigger row / publishEvent ──▶ ChangePayload ──store──▶ changes ─┐
//!                                                                  ▼
//!                     deliveries ⋈ changes ⋈ subscriptions ──▶ (ChangePayload, SubscriptionView)
//!                                                                  │ render(ids, payload, view)
//!                                                                  ▼
//!                     {"event_id", "subscription_id", "resource", "action", …, "data": {…}}
//! ```
//!
//! JSON is kept as text throughout ([`RawObject`]), never as
//! `serde_json::Value`, so a row's key order and number spelling reach the
//! receiver as the database wrote them.

mod raw;
mod render;

pub use changewire_core::Action;
pub(crate) use raw::RawObject;
pub(crate) use render::{EventIds, render};

/// The resource operational events (events about the gateway itself) are
/// stored under; their change holds the whole body in `new`.
pub(crate) const OPERATIONAL_RESOURCE: &str = "OPERATIONAL";

/// One row change, as stored and as sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangePayload {
    /// The `ResourceEnum` value (`RUN_STEPS`; the body says `run_steps`).
    pub resource: String,
    /// What happened to the row.
    #[sqlx(try_from = "String")]
    pub action: Action,
    /// The row's primary key as JSON text: a number or a string, or an
    /// object of the key's columns for a composite key.
    pub row_id: String,
    /// The source transaction; changes of one transaction share it.
    pub transaction_id: i64,
    /// When it happened (Unix ms): the commit time where the database
    /// records one, else the statement time.
    pub occurred_at: i64,
    /// The row's etag after the change (its `etag` column, or a hash).
    pub etag: Option<String>,
    /// The fields that changed, before (JSON object text); None on CREATE.
    pub old: Option<String>,
    /// The fields that changed, after (JSON object text); None on DELETE.
    pub new: Option<String>,
    /// The whole row after the change (JSON object text), for
    /// subscriptions with `includeFullRecord`; on CREATE and DELETE it is
    /// `new` or `old` and not stored twice.
    pub record: Option<String>,
    /// Rows the row's foreign keys point at, `{"column": {row}}` (JSON
    /// object text), for subscriptions with `expand`.
    pub related: Option<String>,
}

impl ChangePayload {
    /// A change with no diff, etag, record or related rows yet.
    pub fn new(
        resource: impl Into<String>,
        action: Action,
        row_id: impl Into<String>,
        transaction_id: i64,
        occurred_at: i64,
    ) -> Self {
        ChangePayload {
            resource: resource.into(),
            action,
            row_id: row_id.into(),
            transaction_id,
            occurred_at,
            etag: None,
            old: None,
            new: None,
            record: None,
            related: None,
        }
    }
}

/// What one subscription asks for beyond the diff. Test pings have no
/// subscription: both fields are then NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionView {
    /// Send the whole row as `data.record`.
    pub include_full_record: Option<bool>,
    /// Foreign-key columns to expand into `data.related` (JSON array text).
    pub expand: Option<String>,
}

impl SubscriptionView {
    /// Whether the body includes the whole row.
    pub(crate) fn wants_record(&self) -> bool {
        self.include_full_record == Some(true)
    }

    /// The columns to expand, in the order given.
    pub(crate) fn expansions(&self) -> Vec<String> {
        self.expand
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or_default()
    }

    /// Whether a body rendered with this view depends only on data that
    /// never changes (the change and the ids), so the audit trail can
    /// render it again exactly instead of storing it.
    pub(crate) fn is_reproducible(&self) -> bool {
        !self.wants_record() && self.expansions().is_empty()
    }
}
