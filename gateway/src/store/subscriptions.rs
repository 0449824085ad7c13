//! `subscriptions`.

use sqlx::AssertSqlSafe;

use super::receivers::Actor;
use super::{Error, Result, Store, is_unique_violation, new_etag, now_ms, on_pool};
use crate::envelope::Action;
use crate::model::{NewSubscription, ReceiverId, SubscriptionId, SubscriptionSettings};

/// A subscription: one (resource, action) for one receiver.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubscriptionRow {
    /// Its id.
    pub id: SubscriptionId,
    /// Whose.
    pub receiver_id: ReceiverId,
    /// A `ResourceEnum` value.
    pub resource: String,
    /// CREATE, UPDATE or DELETE.
    #[sqlx(try_from = "String")]
    pub action: Action,
    /// Whether it fires.
    pub active: bool,
    /// Deliveries carry the whole row as `data.record`.
    pub include_full_record: bool,
    /// Foreign-key columns expanded into `data.related` (JSON array).
    pub expand: String,
    /// The id of the API key that created it.
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

impl SubscriptionRow {
    /// Its settings, in the model's terms.
    pub(crate) fn settings(&self) -> SubscriptionSettings {
        SubscriptionSettings {
            active: self.active,
            include_full_record: self.include_full_record,
            expand: serde_json::from_str(&self.expand).unwrap_or_default(),
        }
    }
}

/// Filters of a subscription listing.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    /// Only this receiver's.
    pub receiver_id: Option<ReceiverId>,
    /// Only this resource.
    pub resource: Option<String>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only active or inactive ones.
    pub active: Option<bool>,
}

const COLUMNS: &str = "id, receiver_id, resource, action, active, include_full_record, expand, created_by_id, \
    created_by_name, etag, created_at, updated_at";

impl Store {
    /// Inserts a subscription; a receiver subscribes once per (resource, action).
    pub async fn insert_subscription(
        &self,
        s: &NewSubscription,
        by: &Actor,
    ) -> Result<SubscriptionRow> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO subscriptions (receiver_id, resource, action, active, include_full_record, expand, \
             created_by_id, created_by_name, etag, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING {COLUMNS}"
        );
        let result = on_pool!(self, |pool| sqlx::query_as::<_, SubscriptionRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(s.receiver_id)
        .bind(&s.resource)
        .bind(s.action.api_name())
        .bind(s.settings.active)
        .bind(s.settings.include_full_record)
        .bind(s.settings.expand_json())
        .bind(&by.id)
        .bind(&by.name)
        .bind(new_etag())
        .bind(now)
        .fetch_one(pool)
        .await);
        match result {
            Ok(row) => Ok(row),
            Err(e) if is_unique_violation(&e) => Err(Error::Duplicate(format!(
                "receiver {} already subscribes to {} {}; update that subscription instead",
                s.receiver_id,
                s.resource,
                s.action.api_name()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// One subscription.
    pub(crate) async fn subscription(&self, id: SubscriptionId) -> Result<Option<SubscriptionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE id = $1");
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, SubscriptionRow>(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// A page of subscriptions with ids above `after`, ascending.
    pub(crate) async fn subscriptions_page(
        &self,
        filter: &SubscriptionFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SubscriptionRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE id > $1 AND ($2 IS NULL OR receiver_id = $2) \
             AND ($3 IS NULL OR resource = $3) AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR active = $5) \
             ORDER BY id LIMIT $6"
        );
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, SubscriptionRow>(AssertSqlSafe(sql.as_str()))
                .bind(after)
                .bind(filter.receiver_id)
                .bind(&filter.resource)
                .bind(filter.action.map(Action::api_name))
                .bind(filter.active)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?)
    }

    /// Number of subscriptions matching a filter.
    pub async fn subscription_count(&self, filter: &SubscriptionFilter) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM subscriptions WHERE ($1 IS NULL OR receiver_id = $1) \
             AND ($2 IS NULL OR resource = $2) AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR active = $4)"
        )
        .bind(filter.receiver_id)
        .bind(&filter.resource)
        .bind(filter.action.map(Action::api_name))
        .bind(filter.active)
        .fetch_one(pool)
        .await
        })?)
    }

    /// Updates the mutable fields if `etag` is current.
    pub(crate) async fn update_subscription(
        &self,
        id: SubscriptionId,
        etag: &str,
        settings: &SubscriptionSettings,
    ) -> Result<SubscriptionRow> {
        let sql = format!(
            "UPDATE subscriptions SET active = $3, include_full_record = $4, expand = $5, etag = $6, updated_at = $7 \
             WHERE id = $1 AND etag = $2 RETURNING {COLUMNS}"
        );
        let row = on_pool!(self, |pool| sqlx::query_as::<_, SubscriptionRow>(
            AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .bind(etag)
        .bind(settings.active)
        .bind(settings.include_full_record)
        .bind(settings.expand_json())
        .bind(new_etag())
        .bind(now_ms())
        .fetch_optional(pool)
        .await)?;
        match row {
            Some(row) => Ok(row),
            None => Err(self.subscription_etag_failure(id, etag).await),
        }
    }

    /// Deletes a subscription if `etag` is current (its past events stay).
    pub(crate) async fn delete_subscription(&self, id: SubscriptionId, etag: &str) -> Result<()> {
        let done = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM subscriptions WHERE id = $1 AND etag = $2"
        )
        .bind(id)
        .bind(etag)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 1 {
            Ok(())
        } else {
            Err(self.subscription_etag_failure(id, etag).await)
        }
    }

    async fn subscription_etag_failure(&self, id: SubscriptionId, given: &str) -> Error {
        let current: Result<Option<String>, sqlx::Error> =
            on_pool!(self, |pool| sqlx::query_scalar::<_, String>(
                "SELECT etag FROM subscriptions WHERE id = $1"
            )
            .bind(id)
            .fetch_optional(pool)
            .await);
        match current {
            Ok(Some(current)) => Error::Conflict {
                entity: "subscription",
                id: id.get(),
                given: given.to_string(),
                current,
            },
            Ok(None) => Error::NotFound {
                entity: "subscription",
                id: id.get(),
            },
            Err(e) => Error::Database(e),
        }
    }
}
