//! Signing and sending: the headers (signatures over the final body,
//! custom headers, Basic auth, the plugin's headers) and the POST.

use std::time::Duration;

use bytes::Bytes;

use super::plugin_step::Body;
use super::{Engine, Receiver};
use crate::delivery::client::{Answer, SendError};
use crate::delivery::headers;
use crate::store::deliveries::LeasedDelivery;

/// What one request sent and got back.
#[derive(Debug)]
pub(super) struct Sent {
    /// The headers sent (in full; masked for the audit trail later).
    pub(crate) request_headers: Vec<(String, String)>,
    /// The receiver's answer, or why there was none.
    pub(crate) result: Result<Answer, SendError>,
    /// How long it took.
    pub(crate) elapsed: Duration,
}

/// Signs `body` for `receiver` and POSTs it.
pub(super) async fn post(
    engine: &Engine,
    receiver: &Receiver,
    d: &LeasedDelivery,
    body: &Body,
    started_at: i64,
) -> Sent {
    let basic = receiver
        .basic_auth
        .as_ref()
        .map(|(u, p)| (u.as_str(), p.expose()));
    let request_headers = headers::build(&headers::RequestParts {
        url: &receiver.url,
        body: body.text.as_bytes(),
        event_id: d.id.get(),
        now_secs: started_at / 1000,
        signing: &receiver.signing(started_at),
        custom: &receiver.headers,
        basic_auth: basic,
        plugin_headers: &body.plugin_headers,
    });
    let (result, elapsed) = engine
        .client
        .send(
            &receiver.url,
            &request_headers,
            Bytes::from(body.text.clone()),
            receiver.timeout,
        )
        .await;
    Sent {
        request_headers,
        result,
        elapsed,
    }
}
