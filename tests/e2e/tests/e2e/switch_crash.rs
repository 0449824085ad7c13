//! kill -9 a gateway right after it switched capture modes, while it drains
//! what the old mode left (the trigger log, or the slot up to the switch
//! marker), under a 20,000-change burst; restart it: every change reaches
//! the receiver at least once, duplicates carry the same `event_id`. Both
//! directions.

use std::time::Duration;

use changewire_test_support::pg::TestDatabase;
use sqlx::Connection;

use super::kill9_no_loss::{
    CHANGES, CaptureMode, burst, every_change_delivered, items_gateway, until_received,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_switching_to_logical_loses_nothing() {
    switch_and_crash(CaptureMode::Triggers, CaptureMode::Logical).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_switching_back_to_triggers_loses_nothing() {
    switch_and_crash(CaptureMode::Logical, CaptureMode::Triggers).await;
}

/// Captures in `from`, is killed, comes back in `to` (switching), is killed
/// again a few hundred deliveries later, and comes back once more in `to`.
async fn switch_and_crash(from: CaptureMode, to: CaptureMode) {
    // The table fits both modes: a primary key and REPLICA IDENTITY FULL.
    let db = TestDatabase::create_logical().await;
    let mut app = sqlx::PgConnection::connect(&db.url).await.unwrap();
    CaptureMode::Logical.create_items(&mut app).await;
    drop(app);
    let mut extra = vec![("CHANGEWIRE_CAPTURE_OPTIONS__BATCH_SIZE", "30".to_string())];
    extra.extend(from.env());
    let (mut gw, sink) = items_gateway(&db.url, &extra).await;

    let writer = tokio::spawn(burst(db.url.clone(), None));
    until_received(&sink, CHANGES / 5, &format!("{from} capture")).await;
    gw.kill9();
    // The writer goes on while no gateway runs: the old mode's backlog (the
    // trigger log, or the slot's WAL) grows to thousands of changes.
    let at_kill = sink.count();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mode = ("CHANGEWIRE_CAPTURE_OPTIONS__MODE", to.to_string());
    gw.restart_with(std::slice::from_ref(&mode)).await;
    until_received(&sink, at_kill + 300, &format!("{from} → {to} switch")).await;
    let at_second_kill = sink.count();
    gw.kill9();
    gw.restart().await;

    let duplicates = every_change_delivered(writer, &sink).await;
    eprintln!(
        "[{from} → {to}] killed after {at_kill} deliveries, switched, killed again after \
         {at_second_kill}: all {CHANGES} changes delivered, {duplicates} duplicates (same event_id)"
    );
}
