//! The webhook body: ION's envelope, written directly from stored JSON text
//! so the captured row's key order reaches the receiver unchanged.

use crate::store::deliveries::LeasedDelivery;
use crate::timefmt::format_ms;

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `related` reduced to the columns this subscription asked for.
fn related_for(related: &str, expand: &str) -> Option<String> {
    let wanted: Vec<String> = serde_json::from_str(expand).ok()?;
    if wanted.is_empty() {
        return None;
    }
    let all = crate::capture::diff::RawObject::parse(related).ok()?;
    let kept: Vec<String> = all
        .0
        .iter()
        .filter(|(k, _)| wanted.contains(k))
        .map(|(k, v)| format!("{}: {}", json_str(k), v.get()))
        .collect();
    (!kept.is_empty()).then(|| format!("{{{}}}", kept.join(", ")))
}

/// Everything a body is made of.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// Delivery id (`event_id`).
    pub event_id: i64,
    /// Subscription (None for test pings: rendered as 0).
    pub subscription_id: Option<i64>,
    /// Resource.
    pub resource: &'a str,
    /// Action.
    pub action: &'a str,
    /// Transaction.
    pub transaction_id: i64,
    /// When it happened (ms).
    pub occurred_at: i64,
    /// Row id (JSON).
    pub row_id: &'a str,
    /// Etag.
    pub etag: Option<&'a str>,
    /// Changed fields before.
    pub old: Option<&'a str>,
    /// Changed fields after.
    pub new: Option<&'a str>,
    /// The full row, when stored (UPDATE only).
    pub record: Option<&'a str>,
    /// Expanded foreign keys.
    pub related: Option<&'a str>,
    /// The subscription wants the full row.
    pub include_full_record: Option<bool>,
    /// The subscription's expansions (JSON array).
    pub expand: Option<&'a str>,
}

impl<'a> From<&'a LeasedDelivery> for Parts<'a> {
    fn from(d: &'a LeasedDelivery) -> Self {
        Parts {
            event_id: d.id,
            subscription_id: d.subscription_id,
            resource: &d.resource,
            action: &d.action,
            transaction_id: d.transaction_id,
            occurred_at: d.occurred_at,
            row_id: &d.row_id,
            etag: d.etag.as_deref(),
            old: d.old.as_deref(),
            new: d.new.as_deref(),
            record: d.record.as_deref(),
            related: d.related.as_deref(),
            include_full_record: d.include_full_record,
            expand: d.expand.as_deref(),
        }
    }
}

impl Parts<'_> {
    /// Whether the body depends only on data that never changes (the change
    /// and the ids), so it can be rendered again exactly instead of stored.
    pub fn is_reproducible(&self) -> bool {
        self.include_full_record != Some(true)
            && self
                .expand
                .is_none_or(|e| e.trim() == "[]" || e.trim().is_empty())
    }
}

/// The body of a delivery.
pub fn body(d: &LeasedDelivery) -> String {
    render(&Parts::from(d))
}

/// The body made of `p`.
pub fn render(p: &Parts<'_>) -> String {
    let mut out =
        String::with_capacity(256 + p.old.map_or(0, str::len) + p.new.map_or(0, str::len));
    out.push_str("{\"event_id\": ");
    out.push_str(&p.event_id.to_string());
    out.push_str(", \"subscription_id\": ");
    out.push_str(&p.subscription_id.unwrap_or(0).to_string());
    out.push_str(", \"resource\": ");
    out.push_str(&json_str(&p.resource.to_ascii_lowercase()));
    out.push_str(", \"action\": ");
    out.push_str(&json_str(&p.action.to_ascii_lowercase()));
    out.push_str(", \"transaction_id\": ");
    out.push_str(&p.transaction_id.to_string());
    out.push_str(", \"occurred_at\": ");
    out.push_str(&json_str(&format_ms(p.occurred_at)));
    out.push_str(", \"data\": {\"id\": ");
    out.push_str(p.row_id);
    out.push_str(", \"etag\": ");
    match p.etag {
        Some(e) => out.push_str(&json_str(e)),
        None => out.push_str("null"),
    }
    out.push_str(", \"old\": ");
    out.push_str(p.old.unwrap_or("null"));
    out.push_str(", \"new\": ");
    out.push_str(p.new.unwrap_or("null"));
    if p.include_full_record == Some(true) {
        // On CREATE and DELETE the full row is `new` or `old` (not stored twice).
        let record = p.record.or(match p.action {
            "CREATE" => p.new,
            "DELETE" => p.old,
            _ => None,
        });
        if let Some(record) = record {
            out.push_str(", \"record\": ");
            out.push_str(record);
        }
    }
    if let (Some(related), Some(expand)) = (p.related, p.expand)
        && let Some(r) = related_for(related, expand)
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

    fn leased() -> LeasedDelivery {
        LeasedDelivery {
            id: 11,
            change_id: 3,
            subscription_id: Some(42),
            receiver_id: 1,
            attempts: 0,
            retry_base: 0,
            lease_until: 0,
            created_at: 0,
            resource: "RUN_STEPS".into(),
            action: "UPDATE".into(),
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
            include_full_record: Some(true),
            expand: Some(r#"["supplier_id"]"#.into()),
            plugin_revision: None,
        }
    }

    #[test]
    fn renders_ions_envelope_in_order() {
        let b = body(&leased());
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
        let mut d = leased();
        d.old = None;
        d.include_full_record = Some(false);
        d.expand = Some("[]".into());
        let v: serde_json::Value = serde_json::from_str(&body(&d)).unwrap();
        assert!(v["data"]["old"].is_null());
        assert!(v["data"].get("record").is_none() && v["data"].get("related").is_none());
    }
}
