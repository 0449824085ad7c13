//! An OTLP/HTTP trace collector on loopback: `POST /v1/traces` with a
//! protobuf `ExportTraceServiceRequest`, every span recorded flat with its
//! ids in hex and its attributes as strings — or, for benchmarks, only
//! counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as SpanStatus};
use prost::Message;

/// One span as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSpan {
    /// Its name.
    pub name: String,
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id (empty for a root span).
    pub parent_span_id: String,
    /// Attributes, values as strings.
    pub attributes: BTreeMap<String, String>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Start and end, Unix nanoseconds.
    pub start_end: (u64, u64),
    /// Its kind, as the protocol names it (`SPAN_KIND_CLIENT`, …).
    pub kind: String,
    /// Its status code (`STATUS_CODE_UNSET` when it has none) and message.
    pub status: (String, String),
}

impl RecordedSpan {
    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The collector; stops when dropped.
pub struct OtlpCollector {
    addr: SocketAddr,
    received: Arc<Received>,
    task: tokio::task::JoinHandle<()>,
}

/// What arrived: every span (when recording) and their count.
#[derive(Default)]
struct Received {
    record: bool,
    spans: Mutex<Vec<RecordedSpan>>,
    count: AtomicU64,
}

fn text(value: Option<&Any>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn receive(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let count: u64 = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|scope| scope.spans.len() as u64)
        .sum();
    received.count.fetch_add(count, Ordering::Relaxed);
    if !received.record {
        return StatusCode::OK;
    }
    let mut got = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in &resource_spans.scope_spans {
            for s in &scope.spans {
                got.push(RecordedSpan {
                    name: s.name.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    attributes: attributes(&s.attributes),
                    service_name: service.clone(),
                    start_end: (s.start_time_unix_nano, s.end_time_unix_nano),
                    kind: SpanKind::try_from(s.kind).map_or_else(
                        |_| format!("unknown {}", s.kind),
                        |k| k.as_str_name().into(),
                    ),
                    status: s.status.as_ref().map_or_else(
                        || (SpanStatus::Unset.as_str_name().into(), String::new()),
                        |st| {
                            let code = SpanStatus::try_from(st.code).map_or_else(
                                |_| format!("unknown {}", st.code),
                                |c| c.as_str_name().into(),
                            );
                            (code, st.message.clone())
                        },
                    ),
                });
            }
        }
    }
    if let Ok(mut all) = received.spans.lock() {
        all.extend(got);
    }
    StatusCode::OK
}

impl OtlpCollector {
    /// Listens on 127.0.0.1 (a free port) and records every span.
    pub async fn start() -> OtlpCollector {
        OtlpCollector::listen(true).await
    }

    /// Listens on 127.0.0.1 (a free port) and only counts the spans (what a
    /// benchmark needs, at a fraction of the cost).
    pub async fn counting() -> OtlpCollector {
        OtlpCollector::listen(false).await
    }

    async fn listen(record: bool) -> OtlpCollector {
        let received = Arc::new(Received {
            record,
            ..Received::default()
        });
        let app = Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let addr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OtlpCollector {
            addr,
            received,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (the exporter adds `/v1/traces`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far (none when only counting).
    pub fn spans(&self) -> Vec<RecordedSpan> {
        self.received
            .spans
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// How many spans were received so far.
    pub fn span_count(&self) -> u64 {
        self.received.count.load(Ordering::Relaxed)
    }

    /// Waits until `done` holds for the spans received (at most `timeout`).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[RecordedSpan]) -> bool,
    ) -> Vec<RecordedSpan> {
        crate::eventually("spans at the collector", timeout, || async {
            let spans = self.spans();
            done(&spans).then_some(spans)
        })
        .await
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
