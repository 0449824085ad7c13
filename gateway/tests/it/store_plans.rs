//! The delivery path's hot statements are index-driven whatever the batch
//! and the table size: the fan-out of 1, 10 and 500 changes, the recorder's
//! statement at 1, 10 and 500 deliveries, and the lease for 1, 10 and 100
//! receivers are planned on stores of 10,000 and 1,000,000 deliveries (and
//! as many changes), with and without fresh statistics; none scans
//! `changes`, `deliveries` or `attempts`, and each uses the index it is
//! built on.

use changewire_gateway::testing::{
    Backend, DeliveryId, LeaseRequest, ReceiverId, Store, StoreUrl, explain_fan_out, explain_lease,
    explain_recorder,
};
use changewire_test_support::pg::TestDatabase;

fn pool(store: &Store) -> &sqlx::PgPool {
    match store.backend() {
        Backend::Postgres(pool) => pool,
        Backend::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

/// Adds deliveries until the store holds `total` (one change, one receiver).
async fn fill(store: &Store, total: i64) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO receivers (name, webhook_uri, content_type, expected_response_code, active, timeout_ms, \
           retry_policy, max_attempts, retry_interval_secs, signature_schemes, ordered, plugin_failure_mode, \
           shared_secret, etag, created_at, updated_at) \
         SELECT 'bench', 'https://hooks.example.com/', 'json', 200, TRUE, 5000, 'exponential', 8, 60, 'ion', FALSE, \
           'fail', 'whsec_c2VjcmV0', 'e', 0, 0 WHERE NOT EXISTS (SELECT 1 FROM receivers); \
         INSERT INTO subscriptions (receiver_id, resource, action, active, etag, created_at, updated_at) \
         SELECT (SELECT min(id) FROM receivers), CASE WHEN g = 0 THEN 'RUNS' ELSE 'OTHER_' || g END, 'UPDATE', TRUE, 'e', 0, 0 \
         FROM generate_series(0, 2000) g WHERE NOT EXISTS (SELECT 1 FROM subscriptions); \
         INSERT INTO changes (source, source_key, resource, action, row_id, transaction_id, occurred_at, created_at) \
         SELECT 'fill', g::text, 'RUNS', 'UPDATE', g::text, g, 0, 0 \
         FROM generate_series((SELECT count(*) FROM changes) + 1, {total}) g; \
         INSERT INTO deliveries (change_id, subscription_id, receiver_id, status, next_attempt_at, created_at, updated_at, completed_at) \
         SELECT (SELECT min(id) FROM changes), g, (SELECT min(id) FROM receivers), CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'succeeded' END, 0, 0, 0, 0 \
         FROM generate_series((SELECT count(*) FROM deliveries) + 1, {total}) g;"
    )))
    .execute(pool(store))
    .await
    .expect("fill");
}

async fn plans(store: &Store, label: &str) {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM deliveries ORDER BY id DESC LIMIT 500")
        .fetch_all(pool(store))
        .await
        .expect("ids");
    for receivers in [1, 10, 100] {
        let requests: Vec<LeaseRequest> = (1..=receivers)
            .map(|r| LeaseRequest {
                receiver_id: ReceiverId(r),
                limit: 32,
                ordered: r % 2 == 0,
                lease_until: i64::MAX / 2,
            })
            .collect();
        let plan = explain_lease(store, &requests)
            .await
            .expect("PostgreSQL")
            .expect("explain");
        assert!(
            !plan.contains("Seq Scan on deliveries"),
            "{label}, {receivers} receivers: the lease scans deliveries:\n{plan}"
        );
        assert!(
            plan.contains("deliveries_due"),
            "{label}, {receivers} receivers: the lease does not use the due index:\n{plan}"
        );
    }
    let receiver: i64 = sqlx::query_scalar("SELECT min(id) FROM receivers")
        .fetch_one(pool(store))
        .await
        .expect("receiver");
    for n in [1, 10, 500] {
        let plan = explain_fan_out(store, "RUNS", n, &[ReceiverId(receiver)])
            .await
            .expect("PostgreSQL")
            .expect("explain");
        for table in ["changes", "deliveries", "attempts"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "{label}, fan-out of {n}: scans {table}:\n{plan}"
            );
        }
    }
    for n in [1, 10, 500] {
        let batch: Vec<DeliveryId> = ids.iter().take(n).map(|id| DeliveryId(*id)).collect();
        let plan = explain_recorder(store, &batch)
            .await
            .expect("PostgreSQL")
            .expect("explain");
        assert!(
            plan.contains("deliveries_pkey"),
            "{label}, {n} rows: the recorder does not look deliveries up by key:\n{plan}"
        );
        for table in ["deliveries", "attempts"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "{label}, {n} rows: the recorder scans {table}:\n{plan}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fan_out_the_recorder_and_the_lease_never_scan_the_queue() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&StoreUrl::parse("store", &db.url).expect("url"))
        .await
        .expect("store");
    for total in [10_000, 1_000_000] {
        fill(&store, total).await;
        plans(&store, &format!("{total} deliveries, stale statistics")).await;
        sqlx::query("ANALYZE deliveries, changes, subscriptions")
            .execute(pool(&store))
            .await
            .expect("analyze");
        plans(&store, &format!("{total} deliveries, analyzed")).await;
    }
}
