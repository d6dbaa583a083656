-- Recovery that never orders twice, and a method timer that counts from the first attempt.

-- When the submit request was last sent (written durably with the intent). Recovery
-- concludes "the CA has no order" only `Provider::in_flight_bound` after this.
ALTER TABLE orders ADD COLUMN submit_sent_at INTEGER;
UPDATE orders SET submit_sent_at = updated_at WHERE state = 'submitting' AND submit_maybe_sent = 1;
-- State `submit_unknown`: why the CA's answer did not settle whether it has the order,
-- and the CA order ids that may be it (JSON array), for the operator.
ALTER TABLE orders ADD COLUMN unsure_reason TEXT;
ALTER TABLE orders ADD COLUMN unsure_candidates TEXT;
-- After adopting an order whose submit was unanswered: when to look once more for
-- further orders carrying the same request (a late first request), to cancel them.
-- Kept on an order that ended meanwhile (issued or failed): the look still happens.
ALTER TABLE orders ADD COLUMN dup_check_at INTEGER;
CREATE INDEX orders_dup_check ON orders(dup_check_at) WHERE dup_check_at IS NOT NULL;

-- When the current method was first tried (token published, approval emails sent);
-- NULL while it has not been. `method_timeout` counts from here.
ALTER TABLE authorizations ADD COLUMN method_tried_at INTEGER;
-- 1 when the current method cannot work (refused by the CA or the publisher, reported
-- invalid): the next step falls back at once.
ALTER TABLE authorizations ADD COLUMN method_failed INTEGER NOT NULL DEFAULT 0;
UPDATE authorizations SET method_failed = 1 WHERE method_started_at = 0;
UPDATE authorizations SET method_tried_at = method_started_at
    WHERE method_started_at > 0 AND state != 'publishing';

-- CA orders found beside the one an order adopted (same request placed twice), and what
-- the CA said when dcvd canceled them.
CREATE TABLE ca_duplicates (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    provider     TEXT NOT NULL,
    ca_order_id  TEXT NOT NULL,
    found_at     INTEGER NOT NULL,
    -- 1 once the CA accepted the cancellation.
    canceled     INTEGER NOT NULL DEFAULT 0,
    -- The CA's answer to the cancel request.
    outcome      TEXT NOT NULL,
    UNIQUE(provider, ca_order_id)
);
