//! Fan-out: a change becomes one pending delivery per matching active
//! subscription of an active receiver, written in the same transaction as the
//! change itself (see [`crate::store::Store::fan_out`]). [`fan_out`] also
//! hands the new deliveries this process may send now straight to its
//! delivery engine ([`crate::delivery::handoff`]). This module turns producer
//! input (`publishEvent`, `POST /v1/events`) into changes.

use crate::traces::Traces;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

pub(crate) mod publisher;

pub(crate) use publisher::{Published, Publisher};

use crate::config::Resources;
use crate::delivery::handoff::{Handoff, Reservation};
use crate::envelope::{Action, ChangePayload};
use crate::signals::Signals;
use crate::store::changes::{FanoutOutcome, NeedsSeen, NewChange};
use crate::store::{self, Store};

/// Why a published event is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The input is unusable; nothing was stored.
    #[error("`{field}`: {reason}")]
    BadInput {
        /// The field.
        field: &'static str,
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The batch this event was stored with failed (the store's error, in words).
    #[error("storing the event failed: {0}")]
    Failed(String),
    /// The gateway is shutting down; nothing was stored.
    #[error("the gateway is shutting down")]
    Unavailable,
}

fn bad(field: &'static str, reason: impl Into<String>) -> Error {
    Error::BadInput {
        field,
        reason: reason.into(),
    }
}

/// An event from a producer that is not a database.
#[derive(Debug, Clone)]
pub(crate) struct PublishedEvent<'a> {
    /// `ResourceEnum` value.
    pub(crate) resource: &'a str,
    /// `CREATE`, `UPDATE` or `DELETE` (any case).
    pub(crate) action: &'a str,
    /// The object's id: a JSON number or string.
    pub(crate) id: &'a RawValue,
    /// Its etag (default: a hash of `new`, or of `old` on DELETE).
    pub(crate) etag: Option<&'a str>,
    /// Fields before (JSON object).
    pub(crate) old: Option<&'a RawValue>,
    /// Fields after (JSON object).
    pub(crate) new: Option<&'a RawValue>,
    /// The full object (JSON object), for subscriptions that ask for it.
    pub(crate) record: Option<&'a RawValue>,
    /// Groups events of one business transaction (default: unique).
    pub(crate) transaction_id: Option<i64>,
    /// Makes publishing idempotent: a second event with the same key is ignored.
    pub(crate) idempotency_key: Option<&'a str>,
    /// When it happened (ms; default now).
    pub(crate) occurred_at: Option<i64>,
}

fn object(field: &'static str, raw: Option<&RawValue>) -> Result<Option<String>, Error> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(Some(text.to_string())),
        Ok(other) => Err(bad(
            field,
            format!("must be a JSON object, found {}", kind(&other)),
        )),
        Err(e) => Err(bad(field, format!("is not JSON: {e}"))),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A short stable hash of a row, used as its etag when it has none.
pub(crate) fn row_etag(row_json: &str) -> String {
    let digest = Sha256::digest(row_json.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Checks a published event and turns it into a change.
pub(crate) fn to_change(resources: &Resources, e: &PublishedEvent<'_>) -> Result<NewChange, Error> {
    if resources.get(e.resource).is_none() {
        return Err(bad(
            "resource",
            format!(
                "`{}` is not a configured resource (one of {})",
                e.resource,
                resources.names().join(", ")
            ),
        ));
    }
    let action = match Action::parse(e.action) {
        Some(a @ (Action::Create | Action::Update | Action::Delete)) => a,
        _ => {
            return Err(bad(
                "action",
                format!("`{}` is not CREATE, UPDATE or DELETE", e.action),
            ));
        }
    };
    let id = e.id.get().trim();
    match serde_json::from_str::<serde_json::Value>(id) {
        Ok(serde_json::Value::Number(_) | serde_json::Value::String(_)) => {}
        Ok(other) => {
            return Err(bad(
                "id",
                format!("must be a number or a string, found {}", kind(&other)),
            ));
        }
        Err(err) => return Err(bad("id", format!("is not JSON: {err}"))),
    }
    let old = object("old", e.old)?;
    let new = object("new", e.new)?;
    let record = object("record", e.record)?;
    match action {
        Action::Create if new.is_none() => return Err(bad("new", "is required for CREATE")),
        Action::Delete if old.is_none() && record.is_none() => {
            return Err(bad("old", "is required for DELETE (or give `record`)"));
        }
        Action::Update if new.is_none() => return Err(bad("new", "is required for UPDATE")),
        _ => {}
    }
    if let Some(key) = e.idempotency_key
        && (key.is_empty() || key.len() > 200)
    {
        return Err(bad("idempotencyKey", "must be 1–200 characters"));
    }
    if let Some(etag) = e.etag
        && etag.len() > 200
    {
        return Err(bad("etag", "must be at most 200 characters"));
    }
    let etag = e
        .etag
        .map(str::to_string)
        .or_else(|| new.as_deref().or(old.as_deref()).map(row_etag));
    let now = store::now_ms();
    Ok(NewChange {
        source: "api".into(),
        source_key: e.idempotency_key.map(str::to_string),
        table_name: None,
        payload: ChangePayload {
            resource: e.resource.to_string(),
            action,
            row_id: id.to_string(),
            transaction_id: e
                .transaction_id
                .unwrap_or_else(|| rand::random::<i64>().abs().max(1)),
            occurred_at: e.occurred_at.unwrap_or(now),
            etag,
            old: if action == Action::Create { None } else { old },
            new: if action == Action::Delete { None } else { new },
            record,
            related: None,
        },
    })
}

/// Publishes one event: checks it, then stores it and fans it out with
/// whatever other events are being published at the same moment.
pub(crate) async fn publish(
    publisher: &Publisher,
    resources: &Resources,
    event: &PublishedEvent<'_>,
) -> Result<Published, Error> {
    let change = to_change(resources, event)?;
    publisher.publish(change).await
}

/// Stores changes with their deliveries (one transaction) and hands the
/// deliveries this process may send now to its delivery engine.
/// Each newly stored change is traced (when traces are exported). With
/// `needs`, see [`Store::fan_out`].
pub(crate) async fn fan_out(
    store: &Store,
    signals: &Signals,
    handoff: Option<&Handoff>,
    traces: &Traces,
    changes: &[NewChange],
    needs: Option<&NeedsSeen>,
) -> Result<FanoutOutcome, store::Error> {
    let reservation = handoff.and_then(|h| h.reserve(changes.len()));
    let mut outcome = store
        .fan_out(
            changes,
            reservation.as_ref().map(Reservation::claims),
            needs,
        )
        .await?;
    traces.changes_fanned_out(changes, &outcome);
    settle(signals, reservation, &mut outcome);
    Ok(outcome)
}

/// After a fan-out committed: passes its claimed deliveries on, gives back
/// the reservation's unused budget, and wakes the dispatcher when some new
/// deliveries wait in the queue.
pub(crate) fn settle(
    signals: &Signals,
    reservation: Option<Reservation>,
    outcome: &mut FanoutOutcome,
) {
    if let Some(reservation) = reservation {
        reservation.deliver(outcome);
    }
    if !outcome.unclaimed_receivers.is_empty() {
        signals.wake_delivery();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn published_events_are_checked() {
        let resources = Resources::new(vec![]).unwrap();
        let id = raw("7");
        let new = raw(r#"{"b": 1, "a": 2}"#);
        let ok = PublishedEvent {
            resource: "RUNS",
            action: "update",
            id: &id,
            etag: None,
            old: None,
            new: Some(&new),
            record: None,
            transaction_id: Some(5),
            idempotency_key: None,
            occurred_at: None,
        };
        let change = to_change(&resources, &ok).unwrap();
        assert_eq!(change.payload.action, Action::Update);
        assert_eq!(
            change.payload.new.as_deref(),
            Some(r#"{"b": 1, "a": 2}"#),
            "key order is kept"
        );
        assert_eq!(change.payload.etag.as_deref().map(str::len), Some(16));
        let err = to_change(
            &resources,
            &PublishedEvent {
                resource: "NOPE",
                ..ok.clone()
            },
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("`resource`"), "{err}");
        let err = to_change(
            &resources,
            &PublishedEvent {
                action: "upsert",
                ..ok.clone()
            },
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("`action`"), "{err}");
        let arr = raw("[1]");
        let err = to_change(
            &resources,
            &PublishedEvent {
                new: Some(&arr),
                ..ok.clone()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("must be a JSON object"), "{err}");
        let obj_id = raw("{}");
        let err = to_change(
            &resources,
            &PublishedEvent {
                id: &obj_id,
                ..ok.clone()
            },
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("`id`"), "{err}");
        let err = to_change(
            &resources,
            &PublishedEvent {
                action: "CREATE",
                new: None,
                ..ok
            },
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("`new`"), "{err}");
    }
}
