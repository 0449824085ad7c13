//! The webhook body: ION's envelope, written directly from stored JSON text
//! so the captured row's key order reaches the receiver unchanged.

use super::{Action, ChangePayload, RawObject, SubscriptionView};
use crate::timefmt::format_ms;

/// The ids a body carries besides the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventIds {
    /// The delivery's id: the body's `event_id`, stable across retries.
    pub(crate) event_id: i64,
    /// The subscription that matched; None for a test ping (rendered as 0).
    pub(crate) subscription_id: Option<i64>,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `related` reduced to the columns this subscription asked for.
fn related_for(related: &str, wanted: &[String]) -> Option<String> {
    if wanted.is_empty() {
        return None;
    }
    let all = RawObject::parse(related).ok()?;
    let kept: Vec<String> = all
        .0
        .iter()
        .filter(|(k, _)| wanted.contains(k))
        .map(|(k, v)| format!("{}: {}", json_str(k), v.get()))
        .collect();
    (!kept.is_empty()).then(|| format!("{{{}}}", kept.join(", ")))
}

/// The body of one delivery of `change`, as `view`'s subscription sees it.
pub(crate) fn render(ids: EventIds, change: &ChangePayload, view: &SubscriptionView) -> String {
    // An operational event is stored with its whole body.
    if change.resource == super::OPERATIONAL_RESOURCE
        && let Some(body) = &change.new
    {
        return body.clone();
    }
    let mut out = String::with_capacity(
        256 + change.old.as_ref().map_or(0, String::len)
            + change.new.as_ref().map_or(0, String::len),
    );
    out.push_str("{\"event_id\": ");
    out.push_str(&ids.event_id.to_string());
    out.push_str(", \"subscription_id\": ");
    out.push_str(&ids.subscription_id.unwrap_or(0).to_string());
    out.push_str(", \"resource\": ");
    out.push_str(&json_str(&change.resource.to_ascii_lowercase()));
    out.push_str(", \"action\": ");
    out.push_str(&json_str(change.action.as_str()));
    out.push_str(", \"transaction_id\": ");
    out.push_str(&change.transaction_id.to_string());
    out.push_str(", \"occurred_at\": ");
    out.push_str(&json_str(&format_ms(change.occurred_at)));
    out.push_str(", \"data\": {\"id\": ");
    out.push_str(&change.row_id);
    out.push_str(", \"etag\": ");
    match &change.etag {
        Some(e) => out.push_str(&json_str(e)),
        None => out.push_str("null"),
    }
    out.push_str(", \"old\": ");
    out.push_str(change.old.as_deref().unwrap_or("null"));
    out.push_str(", \"new\": ");
    out.push_str(change.new.as_deref().unwrap_or("null"));
    if view.wants_record() {
        // On CREATE and DELETE the full row is `new` or `old` (not stored twice).
        let record = change.record.as_deref().or(match change.action {
            Action::Create => change.new.as_deref(),
            Action::Delete => change.old.as_deref(),
            _ => None,
        });
        if let Some(record) = record {
            out.push_str(", \"record\": ");
            out.push_str(record);
        }
    }
    if let Some(related) = &change.related
        && let Some(r) = related_for(related, &view.expansions())
    {
        out.push_str(", \"related\": ");
        out.push_str(&r);
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ChangePayload {
        ChangePayload {
            resource: "RUN_STEPS".into(),
            action: Action::Update,
            row_id: "1234".into(),
            transaction_id: 9876543,
            occurred_at: 1_777_232_022_108,
            etag: Some("abc123".into()),
            old: Some(r#"{"status": "in_progress"}"#.into()),
            new: Some(r#"{"status": "complete", "b": null, "a": 1}"#.into()),
            record: Some(r#"{"id": 1234, "status": "complete", "supplier_id": 5}"#.into()),
            related: Some(
                r#"{"supplier_id": {"id": 5, "name": "Acme"}, "other": {"id": 1}}"#.into(),
            ),
        }
    }

    const IDS: EventIds = EventIds {
        event_id: 11,
        subscription_id: Some(42),
    };

    fn full_view() -> SubscriptionView {
        SubscriptionView {
            include_full_record: Some(true),
            expand: Some(r#"["supplier_id"]"#.into()),
        }
    }

    #[test]
    fn renders_ions_envelope_in_order() {
        let b = render(IDS, &change(), &full_view());
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["event_id"], 11);
        assert_eq!(v["resource"], "run_steps");
        assert_eq!(v["action"], "update");
        assert_eq!(v["occurred_at"], "2026-04-26T19:33:42.108Z");
        assert_eq!(v["data"]["record"]["supplier_id"], 5);
        assert_eq!(v["data"]["related"]["supplier_id"]["name"], "Acme");
        assert!(v["data"]["related"].get("other").is_none());
        assert!(
            b.contains(r#""new": {"status": "complete", "b": null, "a": 1}"#),
            "key order kept: {b}"
        );
        // The core reads it exactly as Python would.
        assert!(changewire_core::ion::signed_string_from_body("u", b.as_bytes()).is_ok());
    }

    #[test]
    fn create_without_options() {
        let mut c = change();
        c.old = None;
        let view = SubscriptionView {
            include_full_record: Some(false),
            expand: Some("[]".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&render(IDS, &c, &view)).unwrap();
        assert!(v["data"]["old"].is_null());
        assert!(v["data"].get("record").is_none() && v["data"].get("related").is_none());
        assert!(view.is_reproducible() && !full_view().is_reproducible());
    }

    mod round_trip {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                "[ -~é✓]{0,12}".prop_map(Value::String),
            ]
        }

        fn object() -> impl Strategy<Value = Map<String, Value>> {
            proptest::collection::btree_map("[a-z_]{1,8}", scalar(), 0..6)
                .prop_map(|m| m.into_iter().collect())
        }

        fn payload() -> impl Strategy<Value = ChangePayload> {
            (
                "[A-Z][A-Z_]{0,11}",
                prop_oneof![
                    Just(Action::Create),
                    Just(Action::Update),
                    Just(Action::Delete)
                ],
                prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    "[a-z0-9-]{1,10}".prop_map(|s| Value::String(s).to_string()),
                ],
                any::<i64>(),
                0i64..4_102_444_800_000,
                proptest::option::of("[a-f0-9]{1,16}"),
                proptest::option::of(object()),
                proptest::option::of(object()),
            )
                .prop_map(
                    |(resource, action, row_id, transaction_id, occurred_at, etag, old, new)| {
                        ChangePayload {
                            resource,
                            action,
                            row_id,
                            transaction_id,
                            occurred_at,
                            etag,
                            old: old.map(|o| Value::Object(o).to_string()),
                            new: new.map(|n| Value::Object(n).to_string()),
                            record: None,
                            related: None,
                        }
                    },
                )
        }

        proptest! {
            /// What the gateway renders, the receiver SDK's parser reads
            /// back as the same change.
            #[test]
            fn a_rendered_payload_parses_back_to_itself(
                change in payload(),
                event_id in 1i64..i64::MAX,
                subscription_id in proptest::option::of(1i64..i64::MAX),
            ) {
                let ids = EventIds { event_id, subscription_id };
                let body = render(ids, &change, &SubscriptionView::default());
                let event = changewire_sdk::parse_event(body.as_bytes()).unwrap();
                prop_assert_eq!(event.event_id, event_id);
                prop_assert_eq!(event.subscription_id, subscription_id.unwrap_or(0));
                prop_assert_eq!(event.resource, change.resource.to_ascii_lowercase());
                prop_assert_eq!(event.action, change.action);
                prop_assert_eq!(event.transaction_id, change.transaction_id);
                prop_assert_eq!(crate::timefmt::parse_rfc3339_ms(&event.occurred_at), Some(change.occurred_at));
                let row_id: Value = serde_json::from_str(&change.row_id).unwrap();
                prop_assert_eq!(event.data.id, row_id);
                prop_assert_eq!(event.data.etag, change.etag);
                let as_map = |text: &Option<String>| text.as_deref().map(|t| {
                    serde_json::from_str::<Map<String, Value>>(t).unwrap()
                });
                prop_assert_eq!(event.data.old, as_map(&change.old));
                prop_assert_eq!(event.data.new, as_map(&change.new));
                prop_assert!(event.data.extra.is_empty());
            }
        }
    }
}
