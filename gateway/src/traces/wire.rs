//! OTLP's protobuf wire format, written directly: each span is encoded once,
//! where it ends, into one buffer (no span model, no allocation per
//! attribute), and an export request is those buffers framed by the
//! resource and the scope.
//!
//! The field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`
//! (OTLP 1.x, stable). The resource and the scope, encoded once per
//! exporter, are built with the generated `opentelemetry-proto` messages;
//! the tests decode what is written here with those messages too.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// A span's kind (`Span.SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Work inside the gateway (a plugin call).
    Internal = 1,
    /// An outgoing request (a delivery attempt).
    Client = 3,
    /// A message taken in (a captured change).
    Consumer = 5,
}

/// A span's status (`Status`): unset, ok, or an error with its message.
#[derive(Debug, Clone, Copy)]
pub(super) enum SpanStatus<'a> {
    /// Nothing to say.
    Unset,
    /// It succeeded.
    Ok,
    /// It failed, with this message.
    Error(&'a str),
}

/// An attribute's value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    /// `string_value`.
    Str(&'a str),
    /// `int_value`.
    Int(i64),
}

/// An attribute: its key and value.
pub(super) type Attribute<'a> = (&'static str, Value<'a>);

/// One finished span, borrowed from where it ended.
#[derive(Debug)]
pub(super) struct Span<'a> {
    /// Its trace.
    pub(super) trace_id: [u8; 16],
    /// Itself.
    pub(super) span_id: [u8; 8],
    /// Its parent; `None` for a root span.
    pub(super) parent: Option<[u8; 8]>,
    /// Its name.
    pub(super) name: &'static str,
    /// Its kind.
    pub(super) kind: Kind,
    /// When it started.
    pub(super) start: SystemTime,
    /// When it ended (never before it started).
    pub(super) end: SystemTime,
    /// Its attributes.
    pub(super) attributes: &'a [Attribute<'a>],
    /// How it ended.
    pub(super) status: SpanStatus<'a>,
}

// `Span` fields.
const TRACE_ID: u32 = 1;
const SPAN_ID: u32 = 2;
const PARENT_SPAN_ID: u32 = 4;
const NAME: u32 = 5;
const KIND: u32 = 6;
const START_TIME: u32 = 7;
const END_TIME: u32 = 8;
const ATTRIBUTES: u32 = 9;
const STATUS: u32 = 15;
const FLAGS: u32 = 16;
// `Status` fields.
const STATUS_MESSAGE: u32 = 2;
const STATUS_CODE: u32 = 3;
// `KeyValue` and `AnyValue` fields.
const KEY: u32 = 1;
const VALUE: u32 = 2;
const STRING_VALUE: u32 = 1;
const INT_VALUE: u32 = 3;
// The framing: `ExportTraceServiceRequest.resource_spans`,
// `ResourceSpans.resource` / `.scope_spans`, `ScopeSpans.scope` / `.spans`.
const RESOURCE_SPANS: u32 = 1;
const RESOURCE: u32 = 1;
const SCOPE_SPANS: u32 = 2;
const SCOPE: u32 = 1;
const SPANS: u32 = 2;

/// W3C "sampled", and "whether the parent is remote is known" (it is not
/// remote: parents are derived, not received), as the SDK sets them.
const SPAN_FLAGS: u32 = 0x01 | 0x100;

/// The length of a length-delimited field with a one-byte key.
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn put_delimited(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn any_value_len(value: &Value<'_>) -> usize {
    match value {
        Value::Str(s) => delimited_len(s.len()),
        // int64 is a varint of the two's complement.
        Value::Int(i) => 1 + encoded_len_varint(*i as u64),
    }
}

fn key_value_len(key: &str, value: &Value<'_>) -> usize {
    delimited_len(key.len()) + delimited_len(any_value_len(value))
}

fn status_len(status: &SpanStatus<'_>) -> Option<usize> {
    match status {
        SpanStatus::Unset => None,
        SpanStatus::Ok => Some(2),
        SpanStatus::Error(message) => Some(delimited_len(message.len()) + 2),
    }
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Span<'_> {
    /// The encoded `Span` message (without its own key and length).
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut len = delimited_len(16) + delimited_len(8) + delimited_len(self.name.len());
        len += if self.parent.is_some() {
            delimited_len(8)
        } else {
            0
        };
        len += 2 + 2 * 9 + 6; // kind, start and end, flags (a two-byte key)
        for (key, value) in self.attributes {
            len += delimited_len(key_value_len(key, value));
        }
        if let Some(status) = status_len(&self.status) {
            len += delimited_len(status);
        }

        let mut buf = Vec::with_capacity(len);
        put_delimited(TRACE_ID, &self.trace_id, &mut buf);
        put_delimited(SPAN_ID, &self.span_id, &mut buf);
        if let Some(parent) = &self.parent {
            put_delimited(PARENT_SPAN_ID, parent, &mut buf);
        }
        put_delimited(NAME, self.name.as_bytes(), &mut buf);
        encode_key(KIND, WireType::Varint, &mut buf);
        encode_varint(self.kind as u64, &mut buf);
        encode_key(START_TIME, WireType::SixtyFourBit, &mut buf);
        buf.extend_from_slice(&unix_nanos(self.start).to_le_bytes());
        encode_key(END_TIME, WireType::SixtyFourBit, &mut buf);
        buf.extend_from_slice(&unix_nanos(self.end.max(self.start)).to_le_bytes());
        for (key, value) in self.attributes {
            encode_key(ATTRIBUTES, WireType::LengthDelimited, &mut buf);
            encode_varint(key_value_len(key, value) as u64, &mut buf);
            put_delimited(KEY, key.as_bytes(), &mut buf);
            encode_key(VALUE, WireType::LengthDelimited, &mut buf);
            encode_varint(any_value_len(value) as u64, &mut buf);
            match value {
                Value::Str(s) => put_delimited(STRING_VALUE, s.as_bytes(), &mut buf),
                Value::Int(i) => {
                    encode_key(INT_VALUE, WireType::Varint, &mut buf);
                    encode_varint(*i as u64, &mut buf);
                }
            }
        }
        if let Some(status) = status_len(&self.status) {
            encode_key(STATUS, WireType::LengthDelimited, &mut buf);
            encode_varint(status as u64, &mut buf);
            let code = match self.status {
                SpanStatus::Unset => 0,
                SpanStatus::Ok => 1,
                SpanStatus::Error(message) => {
                    put_delimited(STATUS_MESSAGE, message.as_bytes(), &mut buf);
                    2
                }
            };
            encode_key(STATUS_CODE, WireType::Varint, &mut buf);
            encode_varint(code, &mut buf);
        }
        encode_key(FLAGS, WireType::ThirtyTwoBit, &mut buf);
        buf.extend_from_slice(&SPAN_FLAGS.to_le_bytes());
        debug_assert_eq!(buf.len(), len, "the span's length was computed exactly");
        buf
    }
}

/// The resource and scope every request names, encoded once.
#[derive(Debug)]
pub(super) struct Frame {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..KeyValue::default()
    }
}

impl Frame {
    /// The resource of the service `service_name`, and changewire's scope.
    pub(super) fn new(service_name: &str) -> Frame {
        let version = env!("CARGO_PKG_VERSION");
        let resource = Resource {
            attributes: vec![
                string_attribute("service.name", service_name),
                string_attribute("service.version", version),
                string_attribute("telemetry.sdk.name", "changewire"),
                string_attribute("telemetry.sdk.language", "rust"),
                string_attribute("telemetry.sdk.version", version),
            ],
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "changewire".into(),
            version: version.into(),
            ..InstrumentationScope::default()
        };
        Frame {
            resource: resource.encode_to_vec(),
            scope: scope.encode_to_vec(),
        }
    }

    /// An `ExportTraceServiceRequest` holding `spans` (each as
    /// [`Span::encode`] wrote it).
    pub(super) fn request(&self, spans: &[Vec<u8>]) -> Vec<u8> {
        let spans_len: usize = spans.iter().map(|s| delimited_len(s.len())).sum();
        let scope_spans_len = delimited_len(self.scope.len()) + spans_len;
        let resource_spans_len =
            delimited_len(self.resource.len()) + delimited_len(scope_spans_len);
        let mut buf = Vec::with_capacity(delimited_len(resource_spans_len));
        encode_key(RESOURCE_SPANS, WireType::LengthDelimited, &mut buf);
        encode_varint(resource_spans_len as u64, &mut buf);
        put_delimited(RESOURCE, &self.resource, &mut buf);
        encode_key(SCOPE_SPANS, WireType::LengthDelimited, &mut buf);
        encode_varint(scope_spans_len as u64, &mut buf);
        put_delimited(SCOPE, &self.scope, &mut buf);
        for span in spans {
            put_delimited(SPANS, span, &mut buf);
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};

    use super::*;

    fn decode(frame: &Frame, spans: &[Vec<u8>]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(frame.request(spans).as_slice()).expect("decodes")
    }

    fn string(value: Option<&AnyValue>) -> Option<&str> {
        match value?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn spans_decode_with_the_generated_messages() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_765_000_000_123_456_789);
        let long_url = format!("https://example.com/{}", "x".repeat(300));
        let attempt = Span {
            trace_id: [7; 16],
            span_id: [8; 8],
            parent: Some([9; 8]),
            name: "POST",
            kind: Kind::Client,
            start,
            end: start + Duration::from_millis(12),
            attributes: &[
                ("url.full", Value::Str(&long_url)),
                ("changewire.delivery_id", Value::Int(300)),
                ("changewire.negative", Value::Int(-1)),
                ("http.response.status_code", Value::Int(500)),
            ],
            status: SpanStatus::Error("receiver answered 500"),
        };
        let change = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: None,
            name: "change",
            kind: Kind::Consumer,
            start,
            // An end before the start is written as the start.
            end: start - Duration::from_secs(1),
            attributes: &[],
            status: SpanStatus::Unset,
        };
        let plugin = Span {
            name: "plugin",
            kind: Kind::Internal,
            status: SpanStatus::Ok,
            ..Span {
                attributes: &[("changewire.plugin.result", Value::Str(""))],
                ..change
            }
        };
        let frame = Frame::new("gw");
        let request = decode(
            &frame,
            &[attempt.encode(), change.encode(), plugin.encode()],
        );

        let [resource_spans] = request.resource_spans.as_slice() else {
            panic!("one resource: {request:?}")
        };
        let resource = resource_spans.resource.as_ref().expect("resource");
        let service = resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .expect("service.name");
        assert_eq!(string(service.value.as_ref()), Some("gw"));
        let [scope_spans] = resource_spans.scope_spans.as_slice() else {
            panic!("one scope")
        };
        let scope = scope_spans.scope.as_ref().expect("scope");
        assert_eq!(scope.name, "changewire");
        assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
        let [a, c, p] = scope_spans.spans.as_slice() else {
            panic!("three spans: {:?}", scope_spans.spans)
        };

        assert_eq!(a.trace_id, [7; 16]);
        assert_eq!(a.span_id, [8; 8]);
        assert_eq!(a.parent_span_id, [9; 8]);
        assert_eq!(a.name, "POST");
        assert_eq!(a.kind, SpanKind::Client as i32);
        assert_eq!(a.start_time_unix_nano, 1_765_000_000_123_456_789);
        assert_eq!(a.end_time_unix_nano, 1_765_000_000_135_456_789);
        assert_eq!(a.flags, 0x101);
        let attrs: Vec<_> = a.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            attrs,
            [
                "url.full",
                "changewire.delivery_id",
                "changewire.negative",
                "http.response.status_code"
            ]
        );
        assert_eq!(string(a.attributes[0].value.as_ref()), Some(&*long_url));
        let int = |i: usize| match a.attributes[i]
            .value
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(any_value::Value::IntValue(n)) => *n,
            other => panic!("{other:?}"),
        };
        assert_eq!((int(1), int(2), int(3)), (300, -1, 500));
        let status = a.status.as_ref().expect("status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "receiver answered 500");

        assert!(c.parent_span_id.is_empty());
        assert_eq!(c.kind, SpanKind::Consumer as i32);
        assert_eq!(c.end_time_unix_nano, c.start_time_unix_nano);
        assert!(c.attributes.is_empty());
        assert!(c.status.is_none());

        assert_eq!(p.kind, SpanKind::Internal as i32);
        assert_eq!(string(p.attributes[0].value.as_ref()), Some(""));
        assert_eq!(
            p.status.as_ref().map(|s| s.code),
            Some(StatusCode::Ok as i32)
        );
    }

    #[test]
    fn an_empty_request_is_still_well_formed() {
        let request = decode(&Frame::new("gw"), &[]);
        assert_eq!(request.resource_spans.len(), 1);
        assert!(request.resource_spans[0].scope_spans[0].spans.is_empty());
    }
}
