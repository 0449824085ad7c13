//! Reading the event out of a verified body.

use crate::{Error, Event};

/// The body verified but is not a changewire event envelope.
#[derive(Debug, thiserror::Error)]
#[error("body is not a changewire event: {0}")]
pub struct EventError(#[source] serde_json::Error);

/// Why [`Webhook::verify_event`](crate::Webhook::verify_event) refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature check failed; the [`Error`] says why.
    #[error(transparent)]
    Verification(#[from] Error),
    /// The signature is valid but the body is not an [`Event`].
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
}

/// Parses a webhook body as an [`Event`] (ION's envelope).
///
/// Call it on a body that has been verified. It reads the body with
/// `serde_json`: a body that Python's `json.loads` accepts but standard JSON
/// does not (`NaN`, a lone surrogate escape, a repeated envelope field) is
/// an [`EventError`] here even though its signature can be valid.
///
/// ```
/// let event = changewire_sdk::parse_event(br#"{"event_id": 1, "subscription_id": 2,
///     "resource": "runs", "action": "create", "transaction_id": 3,
///     "occurred_at": "2026-01-01T00:00:00Z", "data": {"id": 9, "old": null, "new": {"x": 1}}}"#)?;
/// assert_eq!(event.action, changewire_sdk::Action::Create);
/// assert!(event.data.old.is_none());
/// # Ok::<(), changewire_sdk::EventError>(())
/// ```
pub fn parse_event(body: &[u8]) -> Result<Event, EventError> {
    serde_json::from_slice(body).map_err(EventError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_name_the_field() {
        let err = parse_event(br#"{"event_id": 1}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("body is not a changewire event: missing field"),
            "{err}"
        );
        let err = parse_event(br#"{"event_id": 1, "subscription_id": 2, "resource": "r", "action": "merge", "transaction_id": 3, "occurred_at": "t", "data": {"id": 1}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `merge`"), "{err}");
        let wrapped: WebhookError = err.into();
        assert!(matches!(wrapped, WebhookError::InvalidEvent(_)));
        let wrapped: WebhookError = Error::SignatureMismatch.into();
        assert_eq!(wrapped.to_string(), "signature does not match");
    }
}
