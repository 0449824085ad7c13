-- Sender features: a per-receiver rate limit, the start of a receiver's
-- failing streak (auto-disable), an Ed25519 signing key per receiver
-- (Standard Webhooks `v1a`), and operational subscriptions.
ALTER TABLE receivers ADD COLUMN rate_limit_per_second INTEGER;
ALTER TABLE receivers ADD COLUMN failing_since INTEGER;
ALTER TABLE receivers ADD COLUMN signing_key TEXT;
ALTER TABLE receivers ADD COLUMN public_key TEXT;
ALTER TABLE receivers ADD COLUMN previous_signing_key TEXT;
ALTER TABLE receivers ADD COLUMN previous_public_key TEXT;

CREATE TABLE receiver_rate_windows (
    receiver_id INTEGER PRIMARY KEY REFERENCES receivers (id) ON DELETE CASCADE,
    window_start INTEGER NOT NULL,
    used INTEGER NOT NULL,
    granted INTEGER NOT NULL
);

CREATE TABLE operational_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver_id INTEGER NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    event_types TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX operational_subscriptions_by_receiver ON operational_subscriptions (receiver_id);
