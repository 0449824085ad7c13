//! Logs (tracing; text or JSON lines) and metrics (Prometheus text at `/metrics`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0, 60.0,
                    ],
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "changewire_changes_captured_total",
        "Row changes captured or published, by source."
    );
    metrics::describe_counter!(
        "changewire_deliveries_created_total",
        "Deliveries created by fan-out."
    );
    metrics::describe_counter!(
        "changewire_delivery_attempts_total",
        "Delivery attempts, by receiver and outcome."
    );
    metrics::describe_histogram!(
        "changewire_attempt_duration_seconds",
        "Duration of delivery attempts, by receiver."
    );
    metrics::describe_gauge!("changewire_queue_depth", "Pending deliveries, by receiver.");
    metrics::describe_gauge!(
        "changewire_queue_oldest_pending_seconds",
        "Age of the oldest pending delivery, by receiver."
    );
    metrics::describe_gauge!(
        "changewire_receiver_circuit_open",
        "1 while a receiver's circuit breaker is open."
    );
    metrics::describe_counter!("changewire_plugin_calls_total", "Plugin calls, by outcome.");
}

/// Starts logging; harmless if a subscriber is already installed (tests).
pub fn init_logging(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
