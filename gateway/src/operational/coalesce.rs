//! No storms: at most one event of a kind about one receiver per window;
//! the ones in between are counted and reported by the next one sent
//! (`data.coalesced`), which carries the latest details.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{OperationalEvent, OperationalEventType};
use crate::model::ReceiverId;

type Key = (OperationalEventType, Option<ReceiverId>);

#[derive(Debug)]
struct Slot {
    last_sent: Instant,
    /// The latest event held back, and how many were held back.
    held: Option<(OperationalEvent, u64)>,
}

/// Decides which events go now and which wait for their window to end.
#[derive(Debug)]
pub(crate) struct Coalescer {
    window: Duration,
    slots: HashMap<Key, Slot>,
}

impl Coalescer {
    /// At most one event per kind and receiver per `window` (zero: all go).
    pub(crate) fn new(window: Duration) -> Self {
        Coalescer {
            window,
            slots: HashMap::new(),
        }
    }

    /// The event to send now, or None when it is held back (counted).
    pub(crate) fn offer(
        &mut self,
        event: OperationalEvent,
        now: Instant,
    ) -> Option<OperationalEvent> {
        if self.window.is_zero() {
            return Some(event);
        }
        let key = (event.kind, event.subject);
        match self.slots.get_mut(&key) {
            Some(slot) if now.duration_since(slot.last_sent) < self.window => {
                let count = slot.held.as_ref().map_or(0, |(_, n)| *n) + 1;
                slot.held = Some((event, count));
                None
            }
            _ => {
                self.slots.insert(
                    key,
                    Slot {
                        last_sent: now,
                        held: None,
                    },
                );
                Some(event)
            }
        }
    }

    /// Held-back events whose window has ended, each once with the count of
    /// events it stands for; forgets receivers quiet for two windows.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<OperationalEvent> {
        let window = self.window;
        let mut ready = Vec::new();
        for slot in self.slots.values_mut() {
            if now.duration_since(slot.last_sent) < window {
                continue;
            }
            if let Some((mut event, count)) = slot.held.take() {
                event
                    .data
                    .insert("coalesced".into(), serde_json::Value::from(count));
                slot.last_sent = now;
                ready.push(event);
            }
        }
        self.slots
            .retain(|_, s| s.held.is_some() || now.duration_since(s.last_sent) < window * 2);
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: OperationalEventType, subject: i64, n: i64) -> OperationalEvent {
        let mut data = serde_json::Map::new();
        data.insert("n".into(), n.into());
        OperationalEvent {
            kind,
            subject: Some(ReceiverId(subject)),
            data,
        }
    }

    #[test]
    fn a_burst_sends_one_then_one_with_the_count() {
        let mut c = Coalescer::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let kind = OperationalEventType::DeliveryExhausted;
        assert!(c.offer(event(kind, 1, 1), t0).is_some(), "the first goes");
        for n in 2..=5 {
            assert!(
                c.offer(event(kind, 1, n), t0 + Duration::from_secs(1))
                    .is_none()
            );
        }
        // Another receiver and another kind have their own windows.
        assert!(c.offer(event(kind, 2, 1), t0).is_some());
        assert!(
            c.offer(event(OperationalEventType::DeliveryFailing, 1, 1), t0)
                .is_some()
        );
        assert!(c.due(t0 + Duration::from_secs(30)).is_empty());
        let due = c.due(t0 + Duration::from_secs(60));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].data["coalesced"], 4, "{:?}", due[0].data);
        assert_eq!(due[0].data["n"], 5, "the latest details");
        assert!(c.due(t0 + Duration::from_secs(61)).is_empty(), "sent once");
    }

    #[test]
    fn no_window_sends_everything() {
        let mut c = Coalescer::new(Duration::ZERO);
        let t0 = Instant::now();
        for n in 0..3 {
            assert!(
                c.offer(event(OperationalEventType::PluginFailed, 1, n), t0)
                    .is_some()
            );
        }
    }
}
