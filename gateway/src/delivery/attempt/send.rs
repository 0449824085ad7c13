//! Signing and sending: the headers (signatures over the final body,
//! custom headers, Basic auth or an OAuth2 bearer token, the plugin's
//! headers) and the POST. A receiver using OAuth2 that answers 401 gets the
//! request again once, with a freshly fetched token.

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
    traceparent: Option<String>,
) -> Sent {
    let basic = receiver
        .basic_auth
        .as_ref()
        .map(|(u, p)| (u.as_str(), p.expose()));
    let mut request_headers = headers::build(&headers::RequestParts {
        url: &receiver.url,
        body: body.text.as_bytes(),
        event_id: d.id.get(),
        now_secs: started_at / 1000,
        signing: &receiver.signing(started_at),
        custom: &receiver.headers,
        basic_auth: basic,
        plugin_headers: &body.plugin_headers,
    });
    if let Some(value) = traceparent {
        request_headers.retain(|(k, _)| !k.eq_ignore_ascii_case("traceparent"));
        request_headers.push(("traceparent".into(), value));
    }
    let client = receiver.egress.client(&engine.client);
    let payload = Bytes::from(body.text.clone());
    let Some(oauth) = &receiver.egress.oauth else {
        let (result, elapsed) = client
            .send(&receiver.url, &request_headers, payload, receiver.timeout)
            .await;
        return Sent {
            request_headers,
            result,
            elapsed,
        };
    };
    let mut elapsed = Duration::ZERO;
    let mut refresh = false;
    loop {
        let started = std::time::Instant::now();
        let token = receiver
            .state
            .token
            .token(oauth, &engine.client, refresh)
            .await;
        let mut headers = request_headers.clone();
        let token = match token {
            Ok(token) => token,
            Err(err) => {
                return Sent {
                    request_headers: headers,
                    result: Err(SendError::Auth(err.to_string())),
                    elapsed: elapsed + started.elapsed(),
                };
            }
        };
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        headers.push(("authorization".into(), format!("Bearer {token}")));
        let (result, took) = client
            .send(&receiver.url, &headers, payload.clone(), receiver.timeout)
            .await;
        elapsed += started.elapsed().max(took);
        let refused = matches!(&result, Ok(answer) if answer.status == 401);
        if refused && !refresh {
            // The token may have been revoked or expired early: once more
            // with a new one before the attempt counts as failed.
            refresh = true;
            continue;
        }
        return Sent {
            request_headers: headers,
            result,
            elapsed,
        };
    }
}
