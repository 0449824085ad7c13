//! Stores an operational event: one change and one delivery per receiver
//! subscribed to its kind (never the receiver it is about), then wakes the
//! delivery engine.

use std::sync::Arc;
use std::time::Duration;

use super::OperationalEvent;
use crate::config::Config;
use crate::envelope::{Action, ChangePayload};
use crate::report::Report;
use crate::signals::Signals;
use crate::store::changes::NewChange;
use crate::store::{Store, now_ms};
use crate::timefmt::format_ms;

/// Tries to store one event before giving up on it (logged and counted).
const TRIES: u32 = 5;

/// Turns events into deliveries.
#[derive(Debug)]
pub(super) struct Publisher {
    store: Store,
    signals: Arc<Signals>,
    /// `{public_url}/console`, or `/console`; None without a console.
    console: Option<String>,
}

impl Publisher {
    /// For this gateway's configuration.
    pub(super) fn new(config: &Config, store: Store, signals: Arc<Signals>) -> Self {
        let console = config.console.enabled.then(|| {
            format!(
                "{}/console",
                config.console.public_url.as_deref().unwrap_or("")
            )
        });
        Publisher {
            store,
            signals,
            console,
        }
    }

    /// Stores `event` for every receiver subscribed to its kind.
    pub(super) async fn publish(&self, event: OperationalEvent) {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=TRIES {
            match self.try_publish(&event).await {
                Ok(0) => return,
                Ok(n) => {
                    metrics::counter!("changewire_operational_events_total", "type" => event.kind.wire_name())
                        .increment(n);
                    self.signals.wake_delivery();
                    return;
                }
                Err(err) if attempt < TRIES => {
                    tracing::warn!(error = %Report(&err), kind = %event.kind, retry_in = ?wait, "storing an operational event failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(err) => {
                    tracing::error!(error = %Report(&err), kind = %event.kind, "an operational event could not be stored and is dropped");
                    metrics::counter!("changewire_operational_events_dropped_total").increment(1);
                }
            }
        }
    }

    async fn try_publish(&self, event: &OperationalEvent) -> crate::store::Result<u64> {
        let receivers: Vec<_> = self
            .store
            .operational_receivers(event.kind)
            .await?
            .into_iter()
            .filter(|r| Some(*r) != event.subject)
            .collect();
        if receivers.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut payload = ChangePayload::new(
            crate::envelope::OPERATIONAL_RESOURCE,
            Action::Create,
            serde_json::Value::from(event.kind.wire_name()).to_string(),
            rand::random::<i64>().abs().max(1),
            now,
        );
        payload.new = Some(body(self.console.as_deref(), event, now));
        let change = NewChange {
            source: "operational".into(),
            source_key: None,
            table_name: None,
            payload,
        };
        let created = self
            .store
            .insert_direct_deliveries(&change, &receivers)
            .await?;
        Ok(u64::try_from(created.len()).unwrap_or(0))
    }
}

/// The body: `{"type", "timestamp", "data"}`, with links into the console
/// (`console`: its base URL) when there is one.
pub(super) fn body(console: Option<&str>, event: &OperationalEvent, at_ms: i64) -> String {
    let mut data = event.data.clone();
    if let Some(console) = console {
        if let Some(id) = event.subject {
            data.insert(
                "receiverConsoleUrl".into(),
                format!("{console}/receivers/{id}").into(),
            );
        }
        if let Some(id) = data
            .get("eventId")
            .and_then(|v| v.as_str().map(str::to_string))
        {
            data.insert(
                "eventConsoleUrl".into(),
                format!("{console}/events/{id}").into(),
            );
        }
    }
    serde_json::json!({
        "type": event.kind.wire_name(),
        "timestamp": format_ms(at_ms),
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReceiverId;
    use crate::operational::OperationalEventType;

    #[test]
    fn the_body_names_the_type_and_links_the_console() {
        let event = OperationalEvent::new(
            OperationalEventType::DeliveryExhausted,
            Some(ReceiverId(7)),
            serde_json::json!({"eventId": "42", "attempts": 8}),
        );
        let body: serde_json::Value =
            serde_json::from_str(&body(Some("https://hooks.example.com/console"), &event, 0))
                .expect("json");
        assert_eq!(body["type"], "delivery.exhausted");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(body["data"]["attempts"], 8);
        assert_eq!(
            body["data"]["receiverConsoleUrl"],
            "https://hooks.example.com/console/receivers/7"
        );
        assert_eq!(
            body["data"]["eventConsoleUrl"],
            "https://hooks.example.com/console/events/42"
        );
    }
}
