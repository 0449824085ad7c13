//! What a session may open: a receiver or an event, looked up once here,
//! so a receiver-scoped session gets "not found" for anything else on every
//! page alike.

use super::error::Error;
use super::session::Session;
use crate::api::ApiContext;
use crate::model::{DeliveryId, ReceiverId};
use crate::store::deliveries::EventRow;
use crate::store::receivers::ReceiverRow;

/// Receiver `id`, if it exists and this session may see it.
pub(crate) async fn receiver(
    api: &ApiContext,
    session: &Session,
    id: i64,
) -> Result<ReceiverRow, Error> {
    let id = ReceiverId(id);
    session.check_receiver(id)?;
    api.store
        .receiver(id)
        .await?
        .ok_or_else(|| Error::NotFound {
            entity: "receiver",
            id: id.to_string(),
        })
}

/// Event `id`, if it exists and this session may see its receiver.
pub(crate) async fn event(api: &ApiContext, session: &Session, id: i64) -> Result<EventRow, Error> {
    let not_found = || Error::NotFound {
        entity: "event",
        id: id.to_string(),
    };
    let event = api
        .store
        .event(DeliveryId(id))
        .await?
        .ok_or_else(not_found)?;
    session
        .check_receiver(event.receiver_id)
        .map_err(|_| not_found())?;
    Ok(event)
}
