-- Guarantees on the edge paths (see the PostgreSQL migration of the same name).

-- Plugin revisions: every lease reads the revision attached now.
ALTER TABLE plugins ADD COLUMN revision TEXT NOT NULL DEFAULT '';
UPDATE plugins SET revision = sha256 || '-' || created_at WHERE revision = '';

-- Retention counts from completion.
CREATE INDEX deliveries_completed_at ON deliveries (completed_at) WHERE completed_at IS NOT NULL;

-- The capture cursor remembers when the row it points at was logged.
ALTER TABLE capture_cursors ADD COLUMN last_occurred_at BIGINT;
