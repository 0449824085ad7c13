//! Overview: every receiver's health at a glance, from its row (paused,
//! circuit), the queue (depth, oldest pending) and a window of the newest
//! attempts (success rate, p50/p99, last error), with a one-hour plot.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::error::Error;
use super::layout::{self, Nav};
use super::session::Session;
use super::time::{age, when};
use crate::api::ApiContext;
use crate::model::ReceiverId;
use crate::store::deliveries::RecentAttempt;
use crate::store::now_ms;
use crate::store::receivers::ReceiverRow;

/// How many of the newest attempts the overview reads.
const WINDOW: i64 = 5_000;
/// How many receivers the overview and the receivers page list.
pub(crate) const MAX_RECEIVERS: i64 = 500;
const HOUR_MS: i64 = 3_600_000;

/// What the window says of one receiver.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Health {
    /// Attempts in the window.
    pub(crate) attempts: usize,
    /// Of which succeeded (or were filtered by a plugin, on purpose).
    pub(crate) succeeded: usize,
    /// Median duration, ms.
    pub(crate) p50_ms: Option<i32>,
    /// 99th percentile duration, ms.
    pub(crate) p99_ms: Option<i32>,
    /// The newest failure's error.
    pub(crate) last_error: Option<String>,
}

fn percentile(sorted: &[i32], p: f64) -> Option<i32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Health per receiver from a window of attempts.
pub(crate) fn health(window: &[RecentAttempt]) -> HashMap<ReceiverId, Health> {
    let mut durations: HashMap<ReceiverId, Vec<i32>> = HashMap::new();
    let mut out: HashMap<ReceiverId, Health> = HashMap::new();
    let mut newest_failure: HashMap<ReceiverId, i64> = HashMap::new();
    for a in window {
        let h = out.entry(a.receiver_id).or_default();
        h.attempts += 1;
        if matches!(a.outcome.as_str(), "succeeded" | "filtered") {
            h.succeeded += 1;
        } else if newest_failure
            .get(&a.receiver_id)
            .is_none_or(|t| a.started_at >= *t)
        {
            newest_failure.insert(a.receiver_id, a.started_at);
            h.last_error = a.error.clone().or_else(|| Some(a.outcome.clone()));
        }
        durations
            .entry(a.receiver_id)
            .or_default()
            .push(a.duration_ms);
    }
    for (id, mut d) in durations {
        d.sort_unstable();
        if let Some(h) = out.get_mut(&id) {
            h.p50_ms = percentile(&d, 0.50);
            h.p99_ms = percentile(&d, 0.99);
        }
    }
    out
}

/// Deliveries and failures per minute over the last hour (oldest first).
pub(crate) fn per_minute(window: &[RecentAttempt], now: i64) -> Vec<(u32, u32)> {
    let mut buckets = vec![(0u32, 0u32); 60];
    for a in window {
        let ago = now - a.started_at;
        if !(0..HOUR_MS).contains(&ago) {
            continue;
        }
        let slot = 59 - usize::try_from(ago / 60_000).unwrap_or(59).min(59);
        if matches!(a.outcome.as_str(), "succeeded" | "filtered") {
            buckets[slot].0 += 1;
        } else {
            buckets[slot].1 += 1;
        }
    }
    buckets
}

/// The state of a receiver, in words, and its CSS class.
pub(crate) fn state(row: &ReceiverRow, now: i64) -> (String, &'static str) {
    if !row.settings.active {
        return ("inactive".into(), "muted");
    }
    if let Some(until) = row.circuit_open_until.filter(|u| *u > now) {
        return (
            format!(
                "circuit open after {} failures in a row; next probe {}",
                row.consecutive_failures,
                when(until, now)
            ),
            "bad",
        );
    }
    if row.paused {
        let why = row.paused_reason.as_deref().unwrap_or("by hand");
        return (format!("paused: {why}"), "warn");
    }
    ("active".into(), "good")
}

fn chart(buckets: &[(u32, u32)]) -> Markup {
    let max = buckets.iter().map(|(a, b)| a + b).max().unwrap_or(0).max(1);
    let total: u32 = buckets.iter().map(|(a, _)| a).sum();
    let failed: u32 = buckets.iter().map(|(_, b)| b).sum();
    let label = format!("Last hour: {total} delivered, {failed} failed, per minute");
    html! {
        figure.chart {
            svg viewBox="0 0 600 120" role="img" aria-label=(label) preserveAspectRatio="none" {
                title { (label) }
                @for (i, (ok, bad)) in buckets.iter().enumerate() {
                    @let x = i * 10;
                    @let h_ok = (f64::from(*ok) / f64::from(max) * 110.0).round();
                    @let h_bad = (f64::from(*bad) / f64::from(max) * 110.0).round();
                    rect.ok x=(x) y=(120.0 - h_ok) width="8" height=(h_ok) {}
                    rect.fail x=(x) y=(120.0 - h_ok - h_bad) width="8" height=(h_bad) {}
                }
            }
            figcaption {
                span.key-ok { "delivered" } " and " span.key-fail { "failed" }
                " per minute, last hour (" (total) " / " (failed) ")"
            }
        }
    }
}

/// `GET /console`.
pub(crate) async fn page(
    State(api): State<ApiContext>,
    session: Session,
) -> Result<Response, Error> {
    if let Some(id) = session.receiver {
        return Ok(Redirect::to(&format!("/console/receivers/{id}")).into_response());
    }
    let now = now_ms();
    let receivers = api.store.receivers_page(0, MAX_RECEIVERS).await?;
    let queues: HashMap<ReceiverId, (i64, i64)> = api
        .store
        .queue_stats()
        .await?
        .into_iter()
        .map(|q| (q.receiver_id, (q.pending, q.oldest_created_at)))
        .collect();
    let window = api.store.recent_attempts(now - HOUR_MS, WINDOW).await?;
    let health = health(&window);
    let body = html! {
        h1 { "Overview" }
        (chart(&per_minute(&window, now)))
        p.hint { "Rates and latencies come from the newest " (WINDOW) " attempts of the last hour." }
        div.scroll {
            table.receivers {
                caption { "Receivers" }
                thead { tr {
                    th scope="col" { "Receiver" } th scope="col" { "State" }
                    th scope="col" { "Success" } th scope="col" { "p50" } th scope="col" { "p99" }
                    th scope="col" { "Queued" } th scope="col" { "Oldest pending" } th scope="col" { "Last error" }
                } }
                tbody {
                    @for r in &receivers {
                        @let h = health.get(&r.id).cloned().unwrap_or_default();
                        @let (state_text, state_class) = state(r, now);
                        @let (pending, oldest) = queues.get(&r.id).copied().unwrap_or((0, now));
                        tr data-receiver-id=(r.id) {
                            td { a href={ "/console/receivers/" (r.id) } { (r.settings.name) } }
                            td { span class={ "state " (state_class) } { (state_text) } }
                            td { @if h.attempts > 0 {
                                (format!("{:.1} %", h.succeeded as f64 * 100.0 / h.attempts as f64))
                                " of " (h.attempts)
                            } @else { "—" } }
                            td { @if let Some(p) = h.p50_ms { (p) " ms" } @else { "—" } }
                            td { @if let Some(p) = h.p99_ms { (p) " ms" } @else { "—" } }
                            td { (pending) }
                            td { @if pending > 0 { (age(oldest, now)) } @else { "—" } }
                            td.error-text { (h.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if receivers.is_empty() {
            p { "No receivers yet. Create one with the GraphQL API (" a href="/graphql" { "GraphiQL" } ")." }
        }
    };
    Ok(layout::page("Overview", &session, Nav::Overview, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(receiver: i64, started_at: i64, ms: i32, outcome: &str) -> RecentAttempt {
        RecentAttempt {
            receiver_id: ReceiverId(receiver),
            started_at,
            duration_ms: ms,
            outcome: outcome.into(),
            error: (outcome == "failed").then(|| format!("HTTP 500 at {started_at}")),
        }
    }

    #[test]
    fn health_counts_rates_percentiles_and_the_newest_error() {
        let mut window: Vec<_> = (1..=100)
            .map(|i| attempt(1, i, i as i32, "succeeded"))
            .collect();
        window.push(attempt(1, 200, 1000, "failed"));
        window.push(attempt(1, 150, 900, "failed"));
        window.push(attempt(2, 5, 7, "filtered"));
        let h = health(&window);
        let one = &h[&ReceiverId(1)];
        assert_eq!((one.attempts, one.succeeded), (102, 100));
        assert_eq!(one.p50_ms, Some(51));
        assert_eq!(one.p99_ms, Some(900));
        assert_eq!(one.last_error.as_deref(), Some("HTTP 500 at 200"));
        assert_eq!(h[&ReceiverId(2)].succeeded, 1);
    }

    #[test]
    fn the_plot_puts_each_attempt_in_its_minute() {
        let now = 10 * HOUR_MS;
        let window = [
            attempt(1, now - 1_000, 1, "succeeded"),
            attempt(1, now - 61_000, 1, "failed"),
            attempt(1, now - HOUR_MS - 1, 1, "failed"),
        ];
        let b = per_minute(&window, now);
        assert_eq!(b.len(), 60);
        assert_eq!(b[59], (1, 0));
        assert_eq!(b[58], (0, 1));
        assert_eq!(b.iter().map(|(a, f)| a + f).sum::<u32>(), 2);
    }
}
