//! Header sources beyond the plain lists core already reads.

#[cfg(feature = "http")]
use crate::Headers;

/// Reads headers from an [`http::HeaderMap`] (what hyper, axum and reqwest
/// hand you). Values are read as UTF-8; a value that is not UTF-8 counts as
/// absent.
///
/// ```
/// # use changewire_sdk::{HttpHeaders, Headers};
/// let mut map = http::HeaderMap::new();
/// map.insert("X-Ion-Signature", http::HeaderValue::from_static("abc="));
/// assert_eq!(HttpHeaders(&map).header("x-ion-signature"), Some("abc="));
/// ```
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy)]
pub struct HttpHeaders<'a>(pub &'a http::HeaderMap);

#[cfg(feature = "http")]
impl Headers for HttpHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        // HeaderMap names are lowercase; `get` lowercases a `&str` key only
        // when it parses as a header name, so normalise first.
        let lower = name.to_ascii_lowercase();
        std::str::from_utf8(self.0.get(lower.as_str())?.as_bytes()).ok()
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn reads_case_insensitively_as_utf8() {
        let mut map = HeaderMap::new();
        map.insert("webhook-id", HeaderValue::from_static("msg_1"));
        map.insert(
            "webhook-timestamp",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        map.insert(
            "x-ion-signature",
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let headers = HttpHeaders(&map);
        assert_eq!(headers.header("Webhook-ID"), Some("msg_1"));
        assert_eq!(headers.header("webhook-timestamp"), Some("café"));
        assert_eq!(headers.header("x-ion-signature"), None);
        assert_eq!(headers.header("not a header name"), None);
    }
}
