//! Restart PostgreSQL (the store and the captured database) in the middle of
//! a 20,000-change burst: every committed change is delivered. Once with
//! audit triggers, once with logical replication.

use std::sync::Arc;
use std::time::Duration;

use changewire_test_support::pg::Cluster;
use sqlx::Connection;

use super::kill9_no_loss::{
    CHANGES, CaptureMode, all_delivered, burst, check_duplicates, items_gateway, until_received,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_burst_loses_nothing() {
    postgres_restart_mid_burst(&[], CaptureMode::Triggers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_burst_loses_nothing_logical() {
    postgres_restart_mid_burst(&["-c", "wal_level=logical"], CaptureMode::Logical).await;
}

/// The scenario on a throwaway cluster started with `options`.
async fn postgres_restart_mid_burst(options: &'static [&'static str], mode: CaptureMode) {
    let cluster = tokio::task::spawn_blocking(move || Cluster::start_with(options))
        .await
        .unwrap()
        .expect("a throwaway cluster");
    let url = format!("{}/postgres", cluster.url);
    let mut app = sqlx::PgConnection::connect(&url).await.unwrap();
    mode.create_items(&mut app).await;
    drop(app);
    let mut extra = vec![(
        "CHANGEWIRE_CAPTURE_OPTIONS__SWEEP_INTERVAL_MS",
        "200".to_string(),
    )];
    extra.extend(mode.env());
    let (gw, sink) = items_gateway(&url, &extra).await;

    let progress = Arc::new(tokio::sync::Notify::new());
    let writer = tokio::spawn(burst(url.clone(), Some(progress.clone())));
    until_received(&sink, CHANGES / 4, "before the restart").await;
    let c = Arc::new(cluster);
    let stopper = c.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .unwrap()
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let starter = c.clone();
    tokio::task::spawn_blocking(move || starter.resume())
        .await
        .unwrap()
        .expect("start");
    let ids = writer.await.unwrap();
    let seen = all_delivered(&sink, &ids, Duration::from_secs(240)).await;
    let duplicates = check_duplicates(&seen);
    eprintln!(
        "[{mode} capture] PostgreSQL restarted mid-burst: all {} committed changes delivered, {duplicates} duplicates",
        ids.len()
    );
    drop(gw);
}
