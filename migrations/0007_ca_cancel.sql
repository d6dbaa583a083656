-- Cancelling at the CA an order dcvd abandoned (it failed after the CA had it).
-- ca_cancel: NULL (nothing to cancel), 'wanted' (the durable marker, written in the same
-- transaction as the failure, before any cancel call: a restart finishes it), 'canceled'
-- (the CA accepted, or already showed it ended), 'refused' (the CA said no; its words in
-- ca_cancel_answer). ca_cancel_at: when a wanted cancel is (next) due; ca_cancel_attempts:
-- transient failures of it so far (for the backoff).
ALTER TABLE orders ADD COLUMN ca_cancel TEXT;
ALTER TABLE orders ADD COLUMN ca_cancel_at INTEGER;
ALTER TABLE orders ADD COLUMN ca_cancel_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN ca_cancel_answer TEXT;
CREATE INDEX orders_ca_cancel_due ON orders (ca_cancel_at) WHERE ca_cancel = 'wanted';
