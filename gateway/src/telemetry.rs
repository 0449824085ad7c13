//! Logs (tracing; text or JSON lines) and metrics (Prometheus text at `/metrics`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogSettings, StoreUrl};
use crate::store::Store;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub(crate) fn metrics_handle() -> Option<PrometheusHandle> {
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

const CHANGES_CAPTURED: &str = "changewire_changes_captured_total";
const DELIVERIES_CREATED: &str = "changewire_deliveries_created_total";
const ATTEMPTS: &str = "changewire_delivery_attempts_total";
const ATTEMPT_SECONDS: &str = "changewire_attempt_duration_seconds";
const QUEUE_DEPTH: &str = "changewire_queue_depth";
const QUEUE_OLDEST: &str = "changewire_queue_oldest_pending_seconds";
const CIRCUIT_OPEN: &str = "changewire_receiver_circuit_open";

/// The gateway's own metric families (the plugin host's are in
/// `changewire_plugin_host::metric`).
const GATEWAY_FAMILIES: [&str; 7] = [
    CHANGES_CAPTURED,
    DELIVERIES_CREATED,
    ATTEMPTS,
    ATTEMPT_SECONDS,
    QUEUE_DEPTH,
    QUEUE_OLDEST,
    CIRCUIT_OPEN,
];

/// The attempt outcomes every receiver known at start is listed with: those
/// of an HTTP attempt. The others (`filtered`, `plugin_error`, `released`)
/// appear when they first happen.
const HTTP_OUTCOMES: [&str; 3] = ["succeeded", "retry", "failed"];

/// Every metric family `/metrics` lists, from the first scrape on.
pub fn metric_families() -> Vec<&'static str> {
    GATEWAY_FAMILIES
        .iter()
        .chain(changewire_plugin_host::metric::ALL.iter())
        .copied()
        .collect()
}

fn describe() {
    metrics::describe_counter!(
        CHANGES_CAPTURED,
        "Row changes captured or published, by source."
    );
    metrics::describe_counter!(DELIVERIES_CREATED, "Deliveries created by fan-out.");
    metrics::describe_counter!(ATTEMPTS, "Delivery attempts, by receiver and outcome.");
    metrics::describe_histogram!(
        ATTEMPT_SECONDS,
        "Duration of delivery attempts, by receiver."
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Pending deliveries, by receiver.");
    metrics::describe_gauge!(
        QUEUE_OLDEST,
        "Age of the oldest pending delivery, by receiver."
    );
    metrics::describe_gauge!(
        CIRCUIT_OPEN,
        "1 while a receiver's circuit breaker is open."
    );
    changewire_plugin_host::metric::describe();
}

/// A receiver that exists when the gateway starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KnownReceiver {
    /// Its id (the `receiver` label).
    pub(crate) id: crate::model::ReceiverId,
    /// Whether its circuit breaker is open.
    pub(crate) circuit_open: bool,
}

/// Registers the series known at start, at zero (or, for an open circuit,
/// at one), so that a fresh gateway's `/metrics` lists every family before
/// anything happens: dashboards and alerts see 0 rather than "no data", and
/// `rate()` starts from a zero sample. A series already recorded keeps its
/// value.
///
/// `sources` are the `source` labels of captured changes (`api`, and the
/// capture database's kind); `receivers` get their queue, circuit, attempt
/// and duration series.
pub(crate) fn register_known_series(sources: &[&'static str], receivers: &[KnownReceiver]) {
    for &source in sources {
        metrics::counter!(CHANGES_CAPTURED, "source" => source).increment(0);
    }
    metrics::counter!(DELIVERIES_CREATED).increment(0);
    for r in receivers {
        let id = r.id.to_string();
        for outcome in HTTP_OUTCOMES {
            metrics::counter!(ATTEMPTS, "receiver" => id.clone(), "outcome" => outcome)
                .increment(0);
        }
        let _ = metrics::histogram!(ATTEMPT_SECONDS, "receiver" => id.clone());
        metrics::gauge!(QUEUE_DEPTH, "receiver" => id.clone()).increment(0.0);
        metrics::gauge!(QUEUE_OLDEST, "receiver" => id.clone()).increment(0.0);
        metrics::gauge!(CIRCUIT_OPEN, "receiver" => id).set(if r.circuit_open { 1.0 } else { 0.0 });
    }
    changewire_plugin_host::metric::register_zero();
}

/// [`register_known_series`] for this configuration and the receivers in
/// `store`. A store error only costs the per-receiver series (logged).
pub(crate) async fn register_start_series(config: &Config, store: &Store) {
    let mut sources = vec!["api"];
    match &config.capture {
        Some(StoreUrl::Postgres(_)) => sources.push("postgres"),
        Some(StoreUrl::Sqlite(_)) => sources.push("sqlite"),
        None => {}
    }
    let mut receivers = Vec::new();
    let mut after = 0;
    loop {
        match store.receivers_page(after, 1_000).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                after = page.last().map_or(after, |r| r.id.get());
                receivers.extend(page.iter().map(|r| KnownReceiver {
                    id: r.id,
                    circuit_open: r.circuit_open_until.is_some(),
                }));
            }
            Err(err) => {
                tracing::warn!(
                    error = %crate::report::Report(&err),
                    "listing receivers for their metrics failed; their series appear on first use"
                );
                break;
            }
        }
    }
    register_known_series(&sources, &receivers);
}

/// Starts logging; harmless if a subscriber is already installed (tests).
pub(crate) fn init_logging(settings: &LogSettings) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_listed_before_anything_is_recorded() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            register_known_series(
                &["api", "sqlite"],
                &[
                    KnownReceiver {
                        id: crate::model::ReceiverId(7),
                        circuit_open: false,
                    },
                    KnownReceiver {
                        id: crate::model::ReceiverId(8),
                        circuit_open: true,
                    },
                ],
            );
        });
        let text = handle.render();
        for family in metric_families() {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family}:\n{text}"
            );
        }
        for line in [
            "changewire_changes_captured_total{source=\"api\"} 0",
            "changewire_changes_captured_total{source=\"sqlite\"} 0",
            "changewire_deliveries_created_total 0",
            "changewire_queue_depth{receiver=\"7\"} 0",
            "changewire_receiver_circuit_open{receiver=\"7\"} 0",
            "changewire_receiver_circuit_open{receiver=\"8\"} 1",
            "changewire_attempt_duration_seconds_count{receiver=\"7\"} 0",
            "changewire_plugin_calls_total{outcome=\"deliver\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
        }
        assert!(
            text.lines().any(|l| l
                == "changewire_delivery_attempts_total{receiver=\"8\",outcome=\"failed\"} 0"
                || l == "changewire_delivery_attempts_total{outcome=\"failed\",receiver=\"8\"} 0"),
            "{text}"
        );
    }
}
