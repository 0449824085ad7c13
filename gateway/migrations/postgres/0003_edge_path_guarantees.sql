-- Guarantees on the edge paths.
--
-- Plugin revisions. Each attach gives the plugin a new revision, and every
-- lease reads the revision attached *now*, so a delivery knows which plugin
-- must transform it: a gateway that has not loaded that revision (plugins
-- disabled, a module that no longer compiles, the seconds before it syncs)
-- holds the delivery instead of sending it untransformed.
ALTER TABLE plugins ADD COLUMN IF NOT EXISTS revision TEXT;
UPDATE plugins SET revision = sha256 || '-' || created_at WHERE revision IS NULL;
ALTER TABLE plugins ALTER COLUMN revision SET NOT NULL;

-- Retention counts from completion, not creation: a delivery that waited
-- longer than the retention (paused receiver, open circuit) is kept for the
-- whole retention after it finished. BRIN, like `deliveries_created_at`:
-- completions arrive in time order, and a BRIN costs nothing per row write.
CREATE INDEX IF NOT EXISTS deliveries_completed_at ON deliveries USING brin (completed_at);

-- The SQLite capture cursor remembers when the row it points at was logged,
-- so a log that was purged, recreated or restored from a backup (its ids
-- start again) is noticed instead of its new rows being skipped.
ALTER TABLE capture_cursors ADD COLUMN IF NOT EXISTS last_occurred_at BIGINT;
