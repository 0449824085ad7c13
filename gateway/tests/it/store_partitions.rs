//! The partitioned audit trail (PostgreSQL): day partitions made ahead,
//! retention dropping whole days once nothing in them is pending (never
//! pending work), rows past the horizon kept in the default partition, and
//! an upgrade from the unpartitioned store keeping every row.

use changewire_gateway::testing::{
    Action, Backend, ChangePayload, DeliveryId, LeaseRequest, NewChange, Partition, ReceiverId,
    Store, StoreUrl, explain_lease, now_ms, retry_delivery,
};
use changewire_test_support::pg::TestDatabase;
use sqlx::PgPool;

const DAY: i64 = 86_400_000;

fn today() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(DAY)
}

fn pool(store: &Store) -> &PgPool {
    match store.backend() {
        Backend::Postgres(pool) => pool,
        Backend::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

async fn sql(pool: &PgPool, statements: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|err| panic!("{statements}: {err}"));
}

async fn count(store: &Store, query: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.to_string()))
        .fetch_one(pool(store))
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
}

async fn names(store: &Store, table: &str) -> Vec<String> {
    store
        .partitions(table)
        .await
        .unwrap()
        .into_iter()
        .map(|p: Partition| p.name)
        .collect()
}

/// A receiver, and a change with one delivery created at `at` (its
/// `status`, finished at `completed_at`) and one attempt started at `at`.
async fn stored(pool: &PgPool, id: i64, at: i64, status: &str, completed_at: Option<i64>) {
    let completed = completed_at.map_or("NULL".to_string(), |c| c.to_string());
    sql(
        pool,
        &format!(
            "INSERT INTO receivers (id, name, webhook_uri, content_type, expected_response_code, active, timeout_ms, \
               retry_policy, max_attempts, retry_interval_secs, signature_schemes, ordered, plugin_failure_mode, \
               shared_secret, etag, created_at, updated_at) \
             VALUES (1, 'r', 'https://hooks.example.com/', 'json', 200, TRUE, 5000, 'exponential', 8, 60, 'ion', \
               FALSE, 'fail', 'whsec_c2VjcmV0', 'e', 0, 0) ON CONFLICT DO NOTHING; \
             INSERT INTO changes (id, source, source_key, resource, action, row_id, transaction_id, occurred_at, created_at) \
             VALUES ({id}, 'test', '{id}', 'RUNS', 'UPDATE', '{id}', 1, 0, {at}); \
             INSERT INTO deliveries (id, change_id, receiver_id, status, next_attempt_at, created_at, updated_at, completed_at) \
             VALUES ({id}, {id}, 1, '{status}', 0, {at}, {at}, {completed}); \
             INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, request_url, request_headers, outcome) \
             VALUES ({id}, 1, {at}, 1, 'https://hooks.example.com/', '{{}}', 'succeeded');"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_days_once_nothing_in_them_is_pending() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&StoreUrl::parse("store", &db.url).unwrap())
        .await
        .unwrap();
    let day = today();
    // A new store: today and tomorrow, for each table, and a default
    // partition; nothing from before partitioning.
    for table in ["changes", "deliveries", "attempts"] {
        let partitions = store.partitions(table).await.unwrap();
        let days: Vec<(Option<i64>, Option<i64>)> = partitions
            .iter()
            .filter(|p| !p.default)
            .map(|p| (p.from, p.to))
            .collect();
        assert_eq!(
            days,
            (0..2)
                .map(|i| (Some(day + i * DAY), Some(day + (i + 1) * DAY)))
                .collect::<Vec<_>>(),
            "{table}: {partitions:?}"
        );
        assert_eq!(
            partitions.iter().filter(|p| p.default).count(),
            1,
            "{table}"
        );
    }
    // As seen three days later: partitions through day 4.
    assert_eq!(
        store.create_partitions_ahead(day + 3 * DAY).await.unwrap(),
        3 * 3
    );
    // Day 1: finished. Day 2: one finished, one pending.
    stored(
        pool(&store),
        1,
        day + DAY + 10,
        "succeeded",
        Some(day + DAY + 20),
    )
    .await;
    stored(
        pool(&store),
        2,
        day + 2 * DAY + 10,
        "succeeded",
        Some(day + 2 * DAY + 20),
    )
    .await;
    stored(pool(&store), 3, day + 2 * DAY + 30, "pending", None).await;
    assert_eq!(
        count(&store, "SELECT count(*) FROM deliveries_default").await,
        0,
        "every row is in a day partition"
    );

    let cutoff = day + 3 * DAY;
    let mut dropped = store
        .drop_expired_partitions(cutoff)
        .await
        .unwrap()
        .partitions;
    dropped.sort();
    let name = |table: &str, at: i64| -> String {
        let d = time::OffsetDateTime::from_unix_timestamp(at / 1000).unwrap();
        format!(
            "{table}_p{:04}{:02}{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    };
    let mut expected = vec![
        name("attempts", day),
        name("attempts", day + DAY),
        name("changes", day),
        name("changes", day + DAY),
        name("deliveries", day),
        name("deliveries", day + DAY),
    ];
    expected.sort();
    assert_eq!(
        dropped, expected,
        "today (empty) and day 1 (finished) go whole"
    );
    assert!(
        names(&store, "deliveries")
            .await
            .contains(&name("deliveries", day + 2 * DAY))
    );
    assert!(
        names(&store, "attempts")
            .await
            .contains(&name("attempts", day + 2 * DAY)),
        "the attempts of a day whose deliveries stay, stay"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM deliveries").await, 2);
    assert_eq!(count(&store, "SELECT count(*) FROM changes").await, 2);

    // Nothing pending any more: day 2 goes too, attempts with it; day 3
    // (its range not yet past the cutoff) stays.
    sql(
        pool(&store),
        &format!(
            "UPDATE deliveries SET status = 'succeeded', completed_at = {} WHERE id = 3",
            day + 2 * DAY + 40
        ),
    )
    .await;
    let dropped = store
        .drop_expired_partitions(cutoff)
        .await
        .unwrap()
        .partitions;
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM deliveries").await, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM attempts").await, 0);
    assert!(
        names(&store, "deliveries")
            .await
            .contains(&name("deliveries", day + 3 * DAY))
    );
    // A finished delivery still within retention keeps its day.
    stored(
        pool(&store),
        4,
        day + 3 * DAY + 10,
        "succeeded",
        Some(day + 4 * DAY - 1),
    )
    .await;
    let dropped = store
        .drop_expired_partitions(day + 4 * DAY - 1)
        .await
        .unwrap()
        .partitions;
    assert!(dropped.is_empty(), "{dropped:?}");

    // A row past the days made ahead lands in the default partition; the
    // day it belongs to is then not created over it, the days around are.
    stored(pool(&store), 5, day + 5 * DAY + 10, "pending", None).await;
    assert_eq!(
        count(&store, "SELECT count(*) FROM deliveries_default").await,
        1
    );
    let created = store.create_partitions_ahead(day + 5 * DAY).await.unwrap();
    let deliveries = names(&store, "deliveries").await;
    assert!(
        deliveries.contains(&name("deliveries", day + 4 * DAY)),
        "{deliveries:?}"
    );
    assert!(
        !deliveries.contains(&name("deliveries", day + 5 * DAY)),
        "{deliveries:?}"
    );
    assert!(
        deliveries.contains(&name("deliveries", day + 6 * DAY)),
        "{deliveries:?}"
    );
    assert_eq!(created, 3, "day 6 of each table: {created}");
    store.close().await;
}

/// Leases what receiver 1 has due at `now`; the ids leased.
async fn lease(store: &Store, now: i64) -> Vec<i64> {
    let request = LeaseRequest {
        receiver_id: ReceiverId(1),
        limit: 10,
        ordered: false,
        lease_until: now + 60_000,
    };
    store
        .lease("test", now, &[request])
        .await
        .unwrap()
        .iter()
        .map(|d| d.id.get())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_reads_from_the_oldest_partition_with_pending_work() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&StoreUrl::parse("store", &db.url).unwrap())
        .await
        .unwrap();
    let day = today();
    let later = day + 4 * DAY;
    store.create_partitions_ahead(later).await.unwrap();
    stored(pool(&store), 1, day + 2 * DAY + 10, "pending", None).await;
    stored(
        pool(&store),
        2,
        day + DAY + 10,
        "failed",
        Some(day + DAY + 20),
    )
    .await;
    stored(pool(&store), 3, day + 10, "failed", Some(day + 20)).await;
    // Seen from day 4: the oldest pending delivery is on day 2.
    assert_eq!(
        store.refresh_lease_floor(later).await.unwrap(),
        day + 2 * DAY
    );
    let plan = explain_lease(
        &store,
        later,
        &[LeaseRequest {
            receiver_id: ReceiverId(1),
            limit: 10,
            ordered: true,
            lease_until: later,
        }],
    )
    .await
    .unwrap()
    .unwrap();
    let days: Vec<String> = names(&store, "deliveries").await;
    let reads = |partition: &str| {
        plan.lines()
            .any(|line| line.contains("Scan") && line.contains(&format!(" on {partition} ")))
    };
    assert!(
        !reads(&days[0]) && !reads(&days[1]),
        "days 0 and 1 are not read:\n{plan}"
    );
    assert!(reads(&days[2]), "{plan}");
    assert_eq!(lease(&store, later).await, vec![1]);

    // A retry of an older event lowers the bound at once in this process.
    retry_delivery(&store, DeliveryId(2)).await.unwrap();
    assert_eq!(store.lease_floor(), day + DAY + 10);
    assert_eq!(lease(&store, later).await, vec![2]);

    // Another process's redelivery is found at the next refresh.
    sql(
        pool(&store),
        "UPDATE deliveries SET status = 'pending', completed_at = NULL WHERE id = 3",
    )
    .await;
    store.refresh_lease_floor(later).await.unwrap();
    assert_eq!(store.lease_floor(), day);
    assert_eq!(lease(&store, later).await, vec![3]);

    // Nothing pending before yesterday: the bound is yesterday's start, and
    // pending rows in the default partition (any time) lift it.
    assert_eq!(
        store.refresh_lease_floor(now_ms()).await.unwrap(),
        day - DAY
    );
    stored(pool(&store), 4, day + 9 * DAY, "pending", None).await;
    assert_eq!(store.refresh_lease_floor(now_ms()).await.unwrap(), i64::MIN);
    store.close().await;
}

/// The migrations before partitioning, as an upgraded store ran them.
fn migrations_before_partitioning() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if file.as_str() < "0007" {
            std::fs::copy(&path, dir.path().join(&file)).unwrap();
        }
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_store_keeps_every_row_and_lets_them_go_once_pruned() {
    let db = TestDatabase::create().await;
    // The gateway's schema, where it keeps its tables.
    let old_url = format!("{}?options=-csearch_path%3Dchangewire", db.url);
    {
        let admin = PgPool::connect(&db.url).await.unwrap();
        sql(&admin, "CREATE SCHEMA changewire").await;
        admin.close().await;
        let old_pool = PgPool::connect(&old_url).await.unwrap();
        let old = migrations_before_partitioning();
        sqlx::migrate::Migrator::new(old.path())
            .await
            .unwrap()
            .run(&old_pool)
            .await
            .unwrap();
        old_pool.close().await;
    }
    // Rows stored before the upgrade (an hour ago), on the old schema.
    let hour_ago = now_ms() - 3_600_000;
    {
        let before = PgPool::connect(&old_url).await.unwrap();
        stored(&before, 1, hour_ago, "succeeded", Some(hour_ago + 5)).await;
        stored(&before, 2, hour_ago + 10, "pending", None).await;
        before.close().await;
    }

    let store = Store::connect(&StoreUrl::parse("store", &db.url).unwrap())
        .await
        .unwrap();
    for table in ["changes", "deliveries", "attempts"] {
        let partitions = store.partitions(table).await.unwrap();
        let old = partitions
            .iter()
            .find(|p| p.name == format!("{table}_before"))
            .unwrap_or_else(|| panic!("{table}: {partitions:?}"));
        assert_eq!(old.from, None);
        assert!(old.to.unwrap() > hour_ago, "{old:?}");
        assert!(partitions.iter().any(|p| p.default), "{table}");
        assert!(
            partitions.iter().any(|p| p.from == old.to),
            "{table}: the first day starts where it ends"
        );
    }
    assert_eq!(
        count(&store, "SELECT count(*) FROM deliveries_before").await,
        2
    );
    assert!(
        store
            .event(changewire_gateway::testing::DeliveryId(1))
            .await
            .unwrap()
            .is_some()
    );

    // The same change again is recognised across the upgrade; a new one is
    // stored in a day partition with the next id.
    let change = |key: &str| NewChange {
        source: "test".into(),
        source_key: Some(key.into()),
        table_name: None,
        payload: ChangePayload::new("RUNS", Action::Update, key, 1, 0),
    };
    let again = store.fan_out(&[change("1")], None, None).await.unwrap();
    assert_eq!(
        again.changes, 0,
        "a change stored before the upgrade is not stored twice"
    );
    let new = store
        .fan_out(&[change("9"), change("9")], None, None)
        .await
        .unwrap();
    assert_eq!(new.changes, 1, "one key twice in a batch is one change");
    assert!(new.change_ids[0].get() > 2, "{:?}", new.change_ids);
    assert_eq!(
        count(&store, "SELECT count(*) FROM changes_before").await,
        2,
        "the new change is in a day partition"
    );

    // Retention: the finished row is pruned one by one; the pending one
    // holds the old partition until it finishes.
    let cutoff = now_ms() + 1;
    store.prune(cutoff, 100).await.unwrap();
    assert_eq!(
        count(&store, "SELECT count(*) FROM deliveries_before").await,
        1
    );
    assert!(
        !store
            .drop_expired_partitions(cutoff)
            .await
            .unwrap()
            .partitions
            .contains(&"deliveries_before".to_string())
    );
    sql(
        pool(&store),
        &format!(
            "UPDATE deliveries SET status = 'succeeded', completed_at = {hour_ago} WHERE id = 2"
        ),
    )
    .await;
    store.prune(cutoff, 100).await.unwrap();
    let dropped = store
        .drop_expired_partitions(cutoff)
        .await
        .unwrap()
        .partitions;
    for gone in ["deliveries_before", "changes_before", "attempts_before"] {
        assert!(dropped.contains(&gone.to_string()), "{gone}: {dropped:?}");
    }
    assert_eq!(
        count(&store, "SELECT count(*) FROM changes").await,
        1,
        "the new change stays"
    );
    store.close().await;
}
