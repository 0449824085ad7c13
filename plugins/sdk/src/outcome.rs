//! What a plugin decides.

use serde::Serialize;

use crate::Result;
use crate::bindings::changewire::plugin::types as wit;

/// One HTTP header to add to the webhook request.
///
/// The gateway rejects (and fails the delivery for) a name that is not an
/// HTTP token, a value with CR, LF or other control characters, and headers
/// it owns: `content-type`, `content-length`, `host`, `authorization`,
/// `x-ion-signature*`, `webhook-*` and hop-by-hop headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, e.g. `x-team`.
    pub name: String,
    /// Header value, e.g. `payments`.
    pub value: String,
}

/// What to do with the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send the webhook.
    Deliver {
        /// A new body (valid JSON), or `None` to send the original.
        body: Option<String>,
        /// Headers to add.
        headers: Vec<Header>,
    },
    /// Do not send the webhook; the delivery is recorded as `filtered`.
    Drop {
        /// Why, recorded with the delivery.
        reason: String,
    },
}

impl Outcome {
    /// Send the original body unchanged.
    pub fn unchanged() -> Self {
        Outcome::Deliver {
            body: None,
            headers: Vec::new(),
        }
    }

    /// Send `value`, serialized as JSON, instead of the original body.
    pub fn deliver_json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Outcome::Deliver {
            body: Some(serde_json::to_string(value)?),
            headers: Vec::new(),
        })
    }

    /// Send this body, which must be valid JSON, instead of the original.
    pub fn deliver_body(body: impl Into<String>) -> Self {
        Outcome::Deliver {
            body: Some(body.into()),
            headers: Vec::new(),
        }
    }

    /// Do not send the webhook, for this reason.
    pub fn drop(reason: impl Into<String>) -> Self {
        Outcome::Drop {
            reason: reason.into(),
        }
    }

    /// Add a header to the request. Has no effect on [`Outcome::Drop`].
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Outcome::Deliver { headers, .. } = &mut self {
            headers.push(Header {
                name: name.into(),
                value: value.into(),
            });
        }
        self
    }

    /// The new body, if this delivers one.
    pub fn body(&self) -> Option<&str> {
        match self {
            Outcome::Deliver { body, .. } => body.as_deref(),
            Outcome::Drop { .. } => None,
        }
    }

    /// The value of the first added header with this name (ASCII
    /// case-insensitive), if this delivers.
    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Outcome::Deliver { headers, .. } => headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str()),
            Outcome::Drop { .. } => None,
        }
    }

    /// Whether this drops the event.
    pub fn is_drop(&self) -> bool {
        matches!(self, Outcome::Drop { .. })
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Deliver { body, headers } => wit::Outcome::Deliver(wit::Deliver {
                body,
                headers: headers
                    .into_iter()
                    .map(|h| wit::Header {
                        name: h.name,
                        value: h.value,
                    })
                    .collect(),
            }),
            Outcome::Drop { reason } => wit::Outcome::Drop(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_compose() {
        let o = Outcome::deliver_json(&serde_json::json!({"text": "hi"}))
            .map(|o| o.with_header("X-Team", "payments"));
        let o = o.expect("a Value serializes");
        assert_eq!(o.body(), Some(r#"{"text":"hi"}"#));
        assert_eq!(o.header("x-team"), Some("payments"));
        assert!(!o.is_drop());

        let d = Outcome::drop("not wanted").with_header("x-ignored", "1");
        assert_eq!(
            d,
            Outcome::Drop {
                reason: "not wanted".into()
            }
        );
        assert_eq!(d.header("x-ignored"), None);
    }

    #[test]
    fn converts_to_wit() {
        let o: wit::Outcome = Outcome::unchanged().with_header("a", "b").into();
        match o {
            wit::Outcome::Deliver(d) => {
                assert_eq!(d.body, None);
                assert_eq!(d.headers.len(), 1);
                assert_eq!(
                    (d.headers[0].name.as_str(), d.headers[0].value.as_str()),
                    ("a", "b")
                );
            }
            wit::Outcome::Drop(r) => panic!("expected deliver, got drop({r})"),
        }
    }
}
