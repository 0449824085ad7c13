//! Processing each event once under at-least-once delivery.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A bounded memory of recently processed event ids (`event_id`, or the
/// Standard Webhooks `webhook-id` with `Idempotency<String>`).
///
/// The gateway delivers at least once and keeps `event_id` stable across
/// retries, so a receiver sees duplicates after a timeout or a crash. This
/// store remembers the last `capacity` ids that were *completed* (a ring
/// plus a set: the oldest is forgotten first), and the ids being processed
/// right now, so two concurrent deliveries of one event are not both handled.
///
/// Memory only: after a restart it is empty. For exactly-once effects across
/// restarts, record `event_id` in the same database transaction as the
/// effect (a unique index), and use this as the fast path in front of it.
///
/// Cloning is cheap and every clone shares one store.
///
/// ```
/// use changewire_sdk::{Claim, Idempotency};
///
/// let seen = Idempotency::new(2);
/// match seen.claim(41) {
///     Claim::New(guard) => {
///         // … process the event; only then:
///         guard.complete();
///     }
///     Claim::Done | Claim::InFlight => unreachable!(),
/// }
/// assert!(matches!(seen.claim(41), Claim::Done));
/// // A guard dropped without `complete` (an error, a panic) releases the id,
/// // so the gateway's retry is processed.
/// drop(seen.claim(42));
/// assert!(matches!(seen.claim(42), Claim::New(_)));
/// ```
#[derive(Debug)]
pub struct Idempotency<K = i64> {
    state: Arc<Mutex<State<K>>>,
}

impl<K> Clone for Idempotency<K> {
    fn clone(&self) -> Self {
        Idempotency {
            state: Arc::clone(&self.state),
        }
    }
}

#[derive(Debug)]
struct State<K> {
    capacity: usize,
    done: HashSet<K>,
    order: VecDeque<K>,
    in_flight: HashSet<K>,
}

impl<K: Hash + Eq + Clone> State<K> {
    fn remember(&mut self, key: K) -> bool {
        if self.done.contains(&key) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.done.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.done.insert(key);
        true
    }
}

/// What [`Idempotency::claim`] found.
#[must_use = "drop the guard only after processing, or call `complete`"]
#[derive(Debug)]
pub enum Claim<K: Hash + Eq + Clone = i64> {
    /// First time: process the event, then call [`ClaimGuard::complete`].
    New(ClaimGuard<K>),
    /// Already processed: acknowledge (2xx) without processing again.
    Done,
    /// Another delivery of this event is being processed right now: answer
    /// with a retryable status (e.g. 409 or 503) and let the gateway retry.
    InFlight,
}

/// Holds an id claimed for processing. [`complete`](ClaimGuard::complete)
/// records it as done; dropping the guard without completing releases it.
#[derive(Debug)]
pub struct ClaimGuard<K: Hash + Eq + Clone = i64> {
    store: Idempotency<K>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> ClaimGuard<K> {
    /// The claimed id.
    pub fn id(&self) -> Option<&K> {
        self.key.as_ref()
    }

    /// Marks the event as processed: later deliveries get [`Claim::Done`].
    pub fn complete(mut self) {
        if let Some(key) = self.key.take() {
            let mut state = self.store.lock();
            state.in_flight.remove(&key);
            state.remember(key);
        }
    }
}

impl<K: Hash + Eq + Clone> Drop for ClaimGuard<K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.store.lock().in_flight.remove(&key);
        }
    }
}

impl<K: Hash + Eq + Clone> Idempotency<K> {
    /// A store remembering up to `capacity` completed ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Idempotency {
            state: Arc::new(Mutex::new(State {
                capacity,
                done: HashSet::with_capacity(capacity.min(1 << 16)),
                order: VecDeque::with_capacity(capacity.min(1 << 16)),
                in_flight: HashSet::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // The state stays consistent at every await-free step, so a panic in
        // another thread while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `id` for processing; see [`Claim`].
    pub fn claim(&self, id: K) -> Claim<K> {
        let mut state = self.lock();
        if state.done.contains(&id) {
            return Claim::Done;
        }
        if !state.in_flight.insert(id.clone()) {
            return Claim::InFlight;
        }
        Claim::New(ClaimGuard {
            store: self.clone(),
            key: Some(id),
        })
    }

    /// The simple form: records `id` as done and returns whether it was new.
    /// Use [`claim`](Self::claim) when processing can fail and a retry must
    /// run again.
    pub fn first_time(&self, id: K) -> bool {
        let mut state = self.lock();
        if state.in_flight.contains(&id) {
            return false;
        }
        state.remember(id)
    }

    /// Whether `id` is among the remembered completed ids.
    pub fn is_done(&self, id: &K) -> bool {
        self.lock().done.contains(id)
    }

    /// How many completed ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether no completed id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most completed ids remembered at once.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let seen = Idempotency::new(3);
        for id in 1..=3 {
            assert!(seen.first_time(id));
        }
        assert!(!seen.first_time(2));
        assert_eq!(seen.len(), 3);
        assert!(seen.first_time(4)); // evicts 1
        assert_eq!(seen.len(), 3);
        assert!(!seen.is_done(&1));
        assert!(seen.is_done(&2) && seen.is_done(&4));
        assert!(seen.first_time(1)); // 1 is new again; evicts 2
        assert!(!seen.is_done(&2));
        assert_eq!(seen.capacity(), 3);
    }

    #[test]
    fn zero_capacity_still_remembers_the_last_id() {
        let seen = Idempotency::new(0);
        assert_eq!(seen.capacity(), 1);
        assert!(seen.first_time(5));
        assert!(!seen.first_time(5));
        assert!(seen.first_time(6));
        assert!(seen.first_time(5));
    }

    #[test]
    fn claims_are_exclusive_until_completed_or_dropped() {
        let seen: Idempotency<String> = Idempotency::new(8);
        let Claim::New(guard) = seen.claim("msg_1".to_string()) else {
            panic!("first claim must be new")
        };
        assert_eq!(guard.id().map(String::as_str), Some("msg_1"));
        assert!(matches!(seen.claim("msg_1".into()), Claim::InFlight));
        assert!(!seen.first_time("msg_1".into()));
        let other = seen.clone();
        drop(guard);
        assert!(!other.is_done(&"msg_1".to_string()));
        let Claim::New(guard) = other.claim("msg_1".into()) else {
            panic!("released claim must be new again")
        };
        guard.complete();
        assert!(matches!(seen.claim("msg_1".into()), Claim::Done));
        assert_eq!(seen.len(), 1);
        assert!(!seen.is_empty());
    }

    #[test]
    fn shared_across_threads() {
        let seen = Idempotency::new(1000);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let seen = seen.clone();
                std::thread::spawn(move || (0..500).filter(|id| seen.first_time(*id)).count())
            })
            .collect();
        let firsts: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(firsts, 500);
    }
}
