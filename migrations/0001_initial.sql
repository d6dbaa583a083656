-- Times are Unix milliseconds (UTC).

-- One row per configured certificate: what was last issued and when it is due.
CREATE TABLE certificates (
    name              TEXT PRIMARY KEY,
    provider          TEXT NOT NULL,
    names_json        TEXT NOT NULL,
    current_order_id  INTEGER,
    issued_order_id   INTEGER,
    not_after         INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- One issuance attempt at one CA.
CREATE TABLE orders (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    certificate        TEXT NOT NULL REFERENCES certificates(name),
    provider           TEXT NOT NULL,
    state              TEXT NOT NULL,
    failure_reason     TEXT,
    -- Our own reference, written to the CA so recovery can find the order.
    reference          TEXT NOT NULL UNIQUE,
    ca_order_id        TEXT,
    ca_data            TEXT NOT NULL DEFAULT '{}',
    -- 1 while a submit may have reached the CA without us seeing the answer.
    submit_maybe_sent  INTEGER NOT NULL DEFAULT 0,
    names_json         TEXT NOT NULL,
    key_type           TEXT NOT NULL,
    private_key_pem    TEXT NOT NULL,
    csr_pem            TEXT NOT NULL,
    csr_der            BLOB NOT NULL,
    renewal_of         TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER NOT NULL,
    last_error         TEXT,
    last_status_at     INTEGER,
    -- The CA's last word on the order (CaOrderState as JSON), shown by the CLI.
    ca_state           TEXT,
    cert_pem           TEXT,
    chain_pem          TEXT,
    not_after          INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX orders_due ON orders(next_attempt_at) WHERE state NOT IN ('issued', 'failed', 'canceled');
CREATE INDEX orders_certificate ON orders(certificate, id);

-- DCV of one DNS name in one order.
CREATE TABLE authorizations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id           INTEGER NOT NULL REFERENCES orders(id),
    domain             TEXT NOT NULL,
    method             TEXT NOT NULL,
    method_index       INTEGER NOT NULL DEFAULT 0,
    method_started_at  INTEGER NOT NULL,
    state              TEXT NOT NULL,
    challenge_json     TEXT,
    approver_email     TEXT,
    check_json         TEXT,
    checked_at         INTEGER,
    next_check_at      INTEGER,
    check_rounds       INTEGER NOT NULL DEFAULT 0,
    resends            INTEGER NOT NULL DEFAULT 0,
    next_resend_at     INTEGER,
    last_error         TEXT,
    UNIQUE(order_id, domain)
);

-- Append-only history of each order.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id   INTEGER NOT NULL REFERENCES orders(id),
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    domain     TEXT,
    message    TEXT NOT NULL
);
CREATE INDEX events_order ON events(order_id, id);

-- Published tokens still to remove. Written before a token is published.
CREATE TABLE cleanup_journal (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        INTEGER NOT NULL REFERENCES orders(id),
    publisher       TEXT NOT NULL,
    challenge_json  TEXT NOT NULL,
    -- NULL while the token is in use; set when it may be removed.
    due_at          INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX cleanup_due ON cleanup_journal(due_at) WHERE due_at IS NOT NULL;
