-- changewire store, SQLite (same shape as PostgreSQL; AUTOINCREMENT so ids are never reused). Times are Unix milliseconds (BIGINT); JSON is
-- kept as TEXT so the key order of captured rows reaches receivers unchanged.
-- Leases live in `lease_until`/`lease_owner`, which no index covers, so taking
-- a lease is a HOT update on PostgreSQL (no index writes).

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);

CREATE TABLE receivers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    webhook_uri TEXT NOT NULL,
    shared_secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at BIGINT,
    content_type TEXT NOT NULL,
    expected_response_code INTEGER NOT NULL,
    active BOOLEAN NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    paused_reason TEXT,
    circuit_open_until BIGINT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_trips INTEGER NOT NULL DEFAULT 0,
    timeout_ms INTEGER NOT NULL,
    retry_policy TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    retry_interval_secs INTEGER NOT NULL,
    signature_schemes TEXT NOT NULL,
    basic_auth_username TEXT,
    basic_auth_password TEXT,
    ordered BOOLEAN NOT NULL DEFAULT FALSE,
    max_concurrency INTEGER,
    plugin_failure_mode TEXT NOT NULL DEFAULT 'fail',
    created_by_id TEXT,
    created_by_name TEXT,
    etag TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX receivers_updated_at ON receivers (updated_at);

CREATE TABLE receiver_headers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver_id BIGINT NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    key_lower TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (receiver_id, key_lower)
);

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver_id BIGINT NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    resource TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'DELETE')),
    active BOOLEAN NOT NULL,
    include_full_record BOOLEAN NOT NULL DEFAULT FALSE,
    expand TEXT NOT NULL DEFAULT '[]',
    created_by_id TEXT,
    created_by_name TEXT,
    etag TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (receiver_id, resource, action)
);
CREATE INDEX subscriptions_match ON subscriptions (resource, action) WHERE active = TRUE;

CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    source_key TEXT,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    table_name TEXT,
    row_id TEXT NOT NULL,
    transaction_id BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    etag TEXT,
    old TEXT,
    new TEXT,
    record TEXT,
    related TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (source, source_key)
);
CREATE INDEX changes_created_at ON changes (created_at);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id BIGINT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    subscription_id BIGINT,
    receiver_id BIGINT NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_base INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    order_key TEXT,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    completed_at BIGINT,
    UNIQUE (change_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (receiver_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_ordered ON deliveries (receiver_id, order_key, id) WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX deliveries_by_receiver ON deliveries (receiver_id, id);
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, id);
CREATE INDEX deliveries_created_at ON deliveries (created_at);

CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms INTEGER NOT NULL,
    request_url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT,
    response_status INTEGER,
    response_body TEXT,
    outcome TEXT NOT NULL,
    error_class TEXT,
    error TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);

CREATE TABLE plugins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver_id BIGINT NOT NULL UNIQUE REFERENCES receivers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    wasm BLOB NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE capture_cursors (
    source TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);

CREATE TABLE redelivery_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver_id BIGINT NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    from_ms BIGINT NOT NULL,
    to_ms BIGINT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
