//! In-process hand-off from fan-out to sending.
//!
//! Without it, a new delivery waits in the queue until the dispatcher leases
//! it: a wake-up, a query and one more row write per delivery. With it, the
//! fan-out transaction writes the deliveries already leased to this
//! process (within each receiver's free lease budget) and passes them to the
//! dispatcher through a channel once they are committed. Nothing about
//! durability changes: a handed-off delivery is a leased row like any other,
//! so if the process dies its lease expires and any gateway sends it.
//!
//! ```text
//! capture / publishEvent ──reserve()──▶ fan_out(claims) ──commit──▶ deliver() ──channel──▶ dispatcher
//! ```
//!
//! The [`Handoff`] is made by [`super::start`] and passed explicitly to
//! whoever fans out (capture, the publisher); a process without a delivery
//! engine passes none and every new delivery waits in the queue.
//!
//! A [`Reservation`] counts its budget as in flight from the moment it is
//! taken, so the dispatcher cannot lease the same room twice; what the
//! fan-out did not use is given back when the reservation is delivered or
//! dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::Engine;
use super::receivers::{Eligibility, Receiver};
use crate::store::changes::{Claim, Claims, FanoutOutcome};
use crate::store::deliveries::LeasedDelivery;
use crate::store::now_ms;

/// The fan-out's side of the hand-off: what [`super::start`] returns, passed
/// to capture and to the publisher. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Handoff {
    engine: Arc<Engine>,
    sender: mpsc::UnboundedSender<LeasedDelivery>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("owner", &self.engine.owner)
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// The hand-off of `engine`, and the dispatcher's end of its channel.
    pub(super) fn new(engine: &Arc<Engine>) -> (Handoff, mpsc::UnboundedReceiver<LeasedDelivery>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let handoff = Handoff {
            engine: engine.clone(),
            sender,
        };
        (handoff, receiver)
    }

    /// Reserves room for the deliveries of a fan-out of `changes` changes:
    /// per receiver that may be sent to now (active, circuit closed, not
    /// per-row ordered, its plugin loaded here), its free lease budget,
    /// capped by the process-wide budget. None when the engine is stopping
    /// or nothing may be sent now.
    pub(crate) fn reserve(&self, changes: usize) -> Option<Reservation> {
        let engine = self.engine.clone();
        if engine.shutdown.is_cancelled() || changes == 0 {
            return None;
        }
        let now = now_ms();
        let mut global_free = engine
            .settings
            .max_in_flight
            .saturating_sub(engine.in_flight.load(Ordering::SeqCst));
        let mut held = Vec::new();
        let mut claims = Vec::new();
        for receiver in engine.receivers.all() {
            if global_free == 0 {
                break;
            }
            if receiver.ordered
                || receiver.eligibility(now) != Eligibility::Open
                || !engine.plugins.ready_for(&receiver)
            {
                continue;
            }
            let free = receiver
                .lease_budget()
                .saturating_sub(receiver.state.in_flight.load(Ordering::SeqCst));
            // A receiver has at most one subscription per (resource, action),
            // so one fan-out gives it at most one delivery per change.
            let n = free.min(changes).min(global_free);
            if n == 0 {
                continue;
            }
            receiver.state.in_flight.fetch_add(n, Ordering::SeqCst);
            engine.in_flight.fetch_add(n, Ordering::SeqCst);
            global_free -= n;
            let lease = receiver.timeout * 2 + engine.settings.lease_margin;
            claims.push(Claim {
                receiver_id: receiver.id,
                limit: i64::try_from(n).unwrap_or(i64::MAX),
                lease_until: now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4),
            });
            held.push((receiver, n));
        }
        if claims.is_empty() {
            return None;
        }
        Some(Reservation {
            claims: Claims {
                owner: engine.owner.clone(),
                receivers: claims,
            },
            held,
            sender: self.sender.clone(),
            engine,
        })
    }
}

/// Budget reserved for one fan-out; give it to [`Reservation::deliver`]
/// with the fan-out's outcome, or drop it to release everything.
pub(crate) struct Reservation {
    claims: Claims,
    held: Vec<(Arc<Receiver>, usize)>,
    sender: mpsc::UnboundedSender<LeasedDelivery>,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl Reservation {
    /// What the fan-out may lease.
    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Hands the committed, claimed deliveries to the dispatcher and
    /// releases the budget they did not use. Receivers left with unclaimed
    /// deliveries are marked so the dispatcher leases them as room frees up.
    pub(crate) fn deliver(mut self, outcome: &mut FanoutOutcome) {
        for d in std::mem::take(&mut outcome.claimed) {
            if let Some((_, n)) = self.held.iter_mut().find(|(r, _)| r.id == d.receiver_id)
                && *n > 0
            {
                *n -= 1; // this delivery keeps its unit of budget until it finishes
            }
            if self.sender.send(d).is_err() {
                // The dispatcher is gone (shutdown): the lease expires and the
                // delivery is sent again, by this process or another one.
                tracing::debug!("hand-off after the dispatcher stopped; the lease will expire");
            }
        }
        for id in &outcome.unclaimed_receivers {
            if let Some(r) = self.engine.receivers.get(*id) {
                r.state.may_have_due.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut released = 0;
        for (receiver, n) in self.held.drain(..) {
            receiver.state.in_flight.fetch_sub(n, Ordering::SeqCst);
            released += n;
        }
        if released > 0 {
            self.engine.in_flight.fetch_sub(released, Ordering::SeqCst);
            self.engine.freed.notify_one();
        }
    }
}
