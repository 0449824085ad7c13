-- Console sign-ins and magic links. A row is either a link (single use,
-- short-lived, minted by createConsoleSession) or a session (a cookie,
-- opened by signing in or by redeeming a link). Only a SHA-256 of each
-- token is kept, as for API keys.
CREATE TABLE console_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('link', 'session')),
    -- The link a session was opened from: revoking a link ends its sessions.
    link_id INTEGER REFERENCES console_sessions (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    receiver_id INTEGER REFERENCES receivers (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX console_sessions_by_link ON console_sessions (link_id);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- The console's filters on a large audit trail. Unsuccessful deliveries are
-- rare, so "failed" (and filtered, plugin_error) is found through small
-- partial indexes instead of a walk back through every delivery (a delivery
-- that succeeds is never written into them); a row id is found through its
-- changes.
CREATE INDEX deliveries_unsuccessful ON deliveries (id)
    WHERE status IN ('failed', 'filtered', 'plugin_error');
CREATE INDEX deliveries_unsuccessful_by_receiver ON deliveries (receiver_id, id)
    WHERE status IN ('failed', 'filtered', 'plugin_error');
CREATE INDEX changes_row_id ON changes (row_id);

-- A bulk redelivery may be limited to one resource.
ALTER TABLE redelivery_jobs ADD COLUMN resource TEXT;
