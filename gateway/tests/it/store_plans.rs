//! The delivery path's hot statements are index-driven whatever the batch
//! and the table size: the fan-out of 1, 10 and 500 changes, the recorder's
//! statement at 1, 10 and 500 deliveries, and the lease for 1, 10 and 100
//! receivers are planned on stores of 10,000 and 1,000,000 deliveries (and
//! as many changes), with and without fresh statistics; none scans
//! `changes`, `deliveries` or `attempts`, and each uses the index it is
//! built on. The rows are spread over three day partitions: the recorder
//! reads only the partitions its batch can be in. The lease is checked in
//! its generic plan (planned without its parameters' values, as a prepared
//! statement may be), where a join to `changes` once turned into a sort of
//! every change.

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

/// The filled rows span three days from the start of today (the test
/// makes day partitions through three days ahead).
const SPAN_MS: i64 = 3 * 86_400_000 - 1;

/// Today's start (UTC), where the filled rows begin.
fn today() -> i64 {
    let now = changewire_gateway::testing::now_ms();
    now - now.rem_euclid(86_400_000)
}

/// Whether `plan` reads `table` (or one of its partitions) sequentially,
/// but for the partitions in `empty`: reading an empty table is free, and
/// PostgreSQL plans it so once it knows.
fn scans(plan: &str, table: &str, empty: &[String]) -> bool {
    plan.match_indices(&format!("Seq Scan on {table}"))
        .any(|(at, _)| {
            let scanned = plan[at + "Seq Scan on ".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            !empty.iter().any(|e| e == scanned)
        })
}

/// The partitions of the three tables that hold no row.
async fn empty_partitions(store: &Store) -> Vec<String> {
    let mut empty = Vec::new();
    for table in ["changes", "deliveries", "attempts"] {
        for p in store.partitions(table).await.expect("partitions") {
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM (SELECT 1 FROM \"{}\" LIMIT 1) x",
                p.name
            )))
            .fetch_one(pool(store))
            .await
            .expect("count");
            if rows == 0 {
                empty.push(p.name);
            }
        }
    }
    empty
}

/// Adds deliveries until the store holds `total` (a change each, one
/// receiver), spread over `SPAN_MS` from the start of today.
async fn fill(store: &Store, total: i64) {
    let day = today();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO receivers (name, webhook_uri, content_type, expected_response_code, active, timeout_ms, \
           retry_policy, max_attempts, retry_interval_secs, signature_schemes, ordered, plugin_failure_mode, \
           shared_secret, etag, created_at, updated_at) \
         SELECT 'bench', 'https://hooks.example.com/', 'json', 200, TRUE, 5000, 'exponential', 8, 60, 'ion', FALSE, \
           'fail', 'whsec_c2VjcmV0', 'e', 0, 0 WHERE NOT EXISTS (SELECT 1 FROM receivers); \
         INSERT INTO subscriptions (receiver_id, resource, action, active, etag, created_at, updated_at) \
         SELECT (SELECT min(id) FROM receivers), CASE WHEN g = 0 THEN 'RUNS' ELSE 'OTHER_' || g END, 'UPDATE', TRUE, 'e', 0, 0 \
         FROM generate_series(0, 2000) g WHERE NOT EXISTS (SELECT 1 FROM subscriptions); \
         INSERT INTO changes (id, source, source_key, resource, action, row_id, transaction_id, occurred_at, created_at) \
         SELECT g, 'fill', g::text, 'RUNS', 'UPDATE', g::text, g, 0, {day} + g * {SPAN_MS} / {total} \
         FROM generate_series((SELECT count(*) FROM changes) + 1, {total}) g; \
         INSERT INTO deliveries (id, change_id, subscription_id, receiver_id, status, next_attempt_at, created_at, updated_at, completed_at) \
         SELECT g, g, g % 2001, (SELECT min(id) FROM receivers), CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'succeeded' END, 0, \
         {day} + g * {SPAN_MS} / {total}, 0, 0 \
         FROM generate_series((SELECT count(*) FROM deliveries) + 1, {total}) g;"
    )))
    .execute(pool(store))
    .await
    .expect("fill");
}

async fn plans(store: &Store, total: i64, label: &str) {
    let ids: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, created_at FROM deliveries ORDER BY id DESC LIMIT 500")
            .fetch_all(pool(store))
            .await
            .expect("ids");
    let empty = empty_partitions(store).await;
    let first_day = store
        .partitions("deliveries")
        .await
        .expect("partitions")
        .into_iter()
        .find(|p| p.from == Some(today()))
        .expect("today's partition")
        .name;
    for receivers in [1, 10, 100] {
        let requests: Vec<LeaseRequest> = (1..=receivers)
            .map(|r| LeaseRequest {
                receiver_id: ReceiverId(r),
                limit: 32,
                ordered: r % 2 == 0,
                lease_until: i64::MAX / 2,
            })
            .collect();
        let plan = explain_lease(store, changewire_gateway::testing::now_ms(), &requests)
            .await
            .expect("PostgreSQL")
            .expect("explain");
        for table in ["deliveries", "changes"] {
            assert!(
                !scans(&plan, table, &empty),
                "{label}, {receivers} receivers: the lease scans {table}:\n{plan}"
            );
        }
        assert!(
            !plan.contains("Sort Key: x.id"),
            "{label}, {receivers} receivers: the lease sorts changes to join them:\n{plan}"
        );
        assert!(
            plan.contains("receiver_id_next_attempt_at_id_idx"),
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
                !scans(&plan, table, &empty),
                "{label}, fan-out of {n}: scans {table}:\n{plan}"
            );
        }
    }
    for n in [1, 10, 500] {
        let batch: Vec<(DeliveryId, i64)> = ids
            .iter()
            .take(n)
            .map(|(id, created_at)| (DeliveryId(*id), *created_at))
            .collect();
        let plan = explain_recorder(store, &batch)
            .await
            .expect("PostgreSQL")
            .expect("explain");
        assert!(
            plan.lines().any(|line| line.contains("Index Scan")
                && line.contains("deliveries_p")
                && line.contains("_pkey")),
            "{label}, {n} rows: the recorder does not look deliveries up by key:\n{plan}"
        );
        if total > 100_000 {
            // The newest 500 rows are all on the third day. (The generic
            // plan names every partition as a place the update may write;
            // the ones its batch is not in are pruned before any is read.)
            assert!(
                !plan
                    .lines()
                    .any(|line| line.contains("Scan") && line.contains(&first_day)),
                "{label}, {n} rows: the recorder reads a partition its batch is not in:\n{plan}"
            );
        }
        for table in ["deliveries", "attempts"] {
            assert!(
                !scans(&plan, table, &empty),
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
    store
        .create_partitions_ahead(today() + 2 * 86_400_000)
        .await
        .expect("partitions");
    for total in [10_000, 1_000_000] {
        fill(&store, total).await;
        plans(
            &store,
            total,
            &format!("{total} deliveries, stale statistics"),
        )
        .await;
        sqlx::query("ANALYZE deliveries, changes, subscriptions")
            .execute(pool(&store))
            .await
            .expect("analyze");
        plans(&store, total, &format!("{total} deliveries, analyzed")).await;
    }
}
