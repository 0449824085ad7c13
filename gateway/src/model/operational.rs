//! The kinds of operational event (operational webhooks), as the API, the
//! store and the body name them.

use std::fmt;

/// What happened to the gateway or one of its receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum OperationalEventType {
    /// A receiver stopped getting deliveries: its circuit opened, it
    /// answered 410 Gone, or it was disabled after failing for too long.
    ReceiverDisabled,
    /// A receiver whose circuit was open answered again.
    ReceiverRecovered,
    /// A delivery's Nth consecutive failed attempt (`operational.failing_after_attempts`).
    DeliveryFailing,
    /// A delivery used up its retries: it is `failed`.
    DeliveryExhausted,
    /// Capture has not caught up with its log for longer than
    /// `operational.capture_lag_secs`.
    CaptureLagging,
    /// A plugin cannot load here, or failed on a delivery.
    PluginFailed,
}

impl OperationalEventType {
    /// Every kind, in the order the API lists them.
    pub(crate) const ALL: [OperationalEventType; 6] = [
        OperationalEventType::ReceiverDisabled,
        OperationalEventType::ReceiverRecovered,
        OperationalEventType::DeliveryFailing,
        OperationalEventType::DeliveryExhausted,
        OperationalEventType::CaptureLagging,
        OperationalEventType::PluginFailed,
    ];

    /// The body's `type` and the stored name: `receiver.disabled`, …
    pub(crate) const fn wire_name(self) -> &'static str {
        match self {
            OperationalEventType::ReceiverDisabled => "receiver.disabled",
            OperationalEventType::ReceiverRecovered => "receiver.recovered",
            OperationalEventType::DeliveryFailing => "delivery.failing",
            OperationalEventType::DeliveryExhausted => "delivery.exhausted",
            OperationalEventType::CaptureLagging => "capture.lagging",
            OperationalEventType::PluginFailed => "plugin.failed",
        }
    }

    /// Reads [`Self::wire_name`] back.
    pub(crate) fn from_wire_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.wire_name() == name)
    }

    /// The stored form of a set of kinds: wire names, comma-separated, sorted.
    pub(crate) fn join(kinds: &[OperationalEventType]) -> String {
        let mut sorted = kinds.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted
            .iter()
            .map(|k| k.wire_name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads [`Self::join`]'s form (unknown names are skipped).
    pub(crate) fn split(stored: &str) -> Vec<OperationalEventType> {
        stored
            .split(',')
            .filter_map(|n| Self::from_wire_name(n.trim()))
            .collect()
    }
}

impl fmt::Display for OperationalEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_sets_read_back_sorted_and_without_repeats() {
        use OperationalEventType::*;
        let stored = OperationalEventType::join(&[PluginFailed, ReceiverDisabled, PluginFailed]);
        assert_eq!(stored, "receiver.disabled,plugin.failed");
        assert_eq!(
            OperationalEventType::split(&stored),
            vec![ReceiverDisabled, PluginFailed]
        );
        for kind in OperationalEventType::ALL {
            assert_eq!(
                OperationalEventType::from_wire_name(kind.wire_name()),
                Some(kind)
            );
        }
    }
}
