-- Quarantine of damaged rows. Written with plain UPDATEs that touch no other column, so
-- they work whatever else in the row fails to parse.

-- Why the order's row (or one of its authorizations) cannot be read, and since when.
-- NULL while the row is fine. A damaged order is retried with backoff; the first step
-- that reads it whole again clears the marker.
ALTER TABLE orders ADD COLUMN damaged TEXT;
ALTER TABLE orders ADD COLUMN damaged_at INTEGER;
-- Why this cleanup entry cannot be read (retried with backoff, like a failed removal).
ALTER TABLE cleanup_journal ADD COLUMN damaged TEXT;
