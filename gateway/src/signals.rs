//! In-process wake-ups between the API, capture and the delivery engine.
//!
//! Nothing here is needed for correctness: every consumer also polls, and a
//! handed-off delivery is a leased row that any gateway sends once its lease
//! expires. The signals only remove polling latency within one process.

use tokio::sync::Notify;

/// Shared wake-up points.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// New deliveries were written (fan-out, redelivery, test ping).
    pub(crate) work_available: Notify,
    /// A receiver (or its headers, plugin, pause state) changed.
    pub(crate) receivers_changed: Notify,
    /// New changes are waiting at a capture source.
    pub(crate) capture_pending: Notify,
}

impl Signals {
    /// Wakes the delivery workers.
    pub(crate) fn wake_delivery(&self) {
        self.work_available.notify_waiters();
        self.work_available.notify_one();
    }

    /// Tells caches to reload receivers.
    pub(crate) fn receivers_changed(&self) {
        self.receivers_changed.notify_waiters();
        self.receivers_changed.notify_one();
        self.wake_delivery();
    }
}
