-- ACME accounts (provider kind "acme"): one per configured provider and directory URL.
-- The account key is generated once, on the first order, and reused from here on.
CREATE TABLE acme_accounts (
    provider       TEXT NOT NULL,
    directory_url  TEXT NOT NULL,
    -- The account URL (the JWS "kid") the server returned.
    account_url    TEXT NOT NULL,
    -- PKCS#8 DER of the ECDSA P-256 account key. Secret: never logged or shown.
    key_pkcs8      BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (provider, directory_url)
);
