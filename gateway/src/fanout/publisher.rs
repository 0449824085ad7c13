//! Group commit for producer events (`publishEvent`, `POST /v1/events`).
//!
//! Each request used to be its own transaction, so concurrent producers
//! paid one commit (one WAL flush) per event and reached about a quarter of
//! capture's rate. Requests now queue here; one task stores whatever has
//! queued up in one fan-out transaction and answers each request once that
//! transaction is committed. A request still returns only after its event
//! is durable, and alone it waits for no one.

use crate::traces::Traces;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Error;
use crate::delivery::handoff::Handoff;
use crate::report::Report;
use crate::signals::Signals;
use crate::store::Store;
use crate::store::changes::NewChange;

/// Events stored per transaction, at most.
const MAX_BATCH: usize = 500;

/// What publishing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// The stored change, or None when its idempotency key was seen before.
    pub(crate) change_id: Option<crate::model::ChangeId>,
    /// Deliveries created for it.
    pub(crate) deliveries: u64,
}

struct Job {
    change: NewChange,
    reply: oneshot::Sender<Result<Published, Error>>,
}

/// The queue in front of the store; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Publisher {
    jobs: mpsc::Sender<Job>,
}

impl Publisher {
    /// Starts the committing task; it ends when every clone is dropped.
    pub(crate) fn start(
        store: Store,
        signals: Arc<Signals>,
        handoff: Option<Handoff>,
        traces: Traces,
    ) -> Publisher {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(store, signals, handoff, traces, queue));
        Publisher { jobs }
    }

    /// Stores one change with its deliveries; returns once it is committed.
    pub(crate) async fn publish(&self, change: NewChange) -> Result<Published, Error> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { change, reply })
            .await
            .map_err(|_| Error::Unavailable)?;
        answer.await.map_err(|_| Error::Unavailable)?
    }
}

async fn run(
    store: Store,
    signals: Arc<Signals>,
    handoff: Option<Handoff>,
    traces: Traces,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        while waiting.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        let batch = next_batch(&mut waiting);
        commit(&store, &signals, handoff.as_ref(), &traces, batch).await;
    }
}

/// Takes up to [`MAX_BATCH`] jobs in arrival order, each idempotency key at
/// most once: a repeat waits for the next batch, where it is seen as the
/// duplicate it is.
fn next_batch(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut keys: HashSet<(String, String)> = HashSet::new();
    let mut batch = Vec::new();
    let mut deferred = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if batch.len() == MAX_BATCH {
            deferred.push_back(job);
            continue;
        }
        let fresh = match &job.change.source_key {
            Some(key) => keys.insert((job.change.source.clone(), key.clone())),
            None => true,
        };
        if fresh {
            batch.push(job);
        } else {
            deferred.push_back(job);
        }
    }
    *waiting = deferred;
    batch
}

async fn commit(
    store: &Store,
    signals: &Signals,
    handoff: Option<&Handoff>,
    traces: &Traces,
    batch: Vec<Job>,
) {
    let changes: Vec<NewChange> = batch.iter().map(|j| j.change.clone()).collect();
    match super::fan_out(store, signals, handoff, traces, &changes, None).await {
        Ok(outcome) => {
            for (job, stored) in batch.into_iter().zip(outcome.per_change) {
                let published = Published {
                    change_id: stored.map(|(id, _)| id),
                    deliveries: stored.map_or(0, |(_, n)| n),
                };
                // The caller may have gone away (client disconnected): fine.
                let _ = job.reply.send(Ok(published));
            }
        }
        Err(err) => {
            let message = Report(&err).to_string();
            let mut jobs = batch.into_iter();
            let first = jobs.next();
            for job in jobs {
                let _ = job.reply.send(Err(Error::Failed(message.clone())));
            }
            if let Some(job) = first {
                let _ = job.reply.send(Err(Error::Store(err)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: Option<&str>) -> (Job, oneshot::Receiver<Result<Published, Error>>) {
        let (reply, rx) = oneshot::channel();
        let change = NewChange {
            source: "api".into(),
            source_key: key.map(str::to_string),
            table_name: None,
            payload: crate::envelope::ChangePayload::new(
                "RUNS",
                crate::envelope::Action::Update,
                "1",
                1,
                1,
            ),
        };
        (Job { change, reply }, rx)
    }

    #[test]
    fn a_repeated_key_waits_for_the_next_batch() {
        let mut waiting: VecDeque<Job> = [Some("a"), None, Some("a"), Some("b"), None]
            .into_iter()
            .map(|k| job(k).0)
            .collect();
        let first = next_batch(&mut waiting);
        let keys: Vec<_> = first.iter().map(|j| j.change.source_key.clone()).collect();
        assert_eq!(
            keys,
            vec![Some("a".into()), None, Some("b".into()), None],
            "arrival order kept, the second `a` deferred"
        );
        assert_eq!(waiting.len(), 1);
        let second = next_batch(&mut waiting);
        assert_eq!(second[0].change.source_key.as_deref(), Some("a"));
        assert!(waiting.is_empty());
    }

    #[test]
    fn batches_are_bounded() {
        let mut waiting: VecDeque<Job> = (0..MAX_BATCH + 3).map(|_| job(None).0).collect();
        assert_eq!(next_batch(&mut waiting).len(), MAX_BATCH);
        assert_eq!(waiting.len(), 3);
    }
}
