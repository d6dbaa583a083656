//! All SQL: opening the SQLite database (WAL, busy timeout, foreign keys, migrations) and
//! typed reads/writes of certificates, orders, authorizations, events and the cleanup journal.

mod acme;
mod damaged;
mod events;
mod journal;
mod orders;
mod overview;
mod recovery;
mod rows;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use acme::AcmeAccount;
pub use damaged::{DAMAGED_KEY_REASON, DamagedJournal, DamagedOrder};
pub use events::NewEvent;
pub use journal::JournalEntry;
pub use orders::{CertificateRecord, NewOrder, OrderSummary};
pub use overview::{LatestOrder, OrderOverview};
pub use recovery::Duplicate;
pub use rows::{Authorization, Event, Order};

use crate::model::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Sql(#[from] sqlx::Error),
    /// A stored row that does not parse: named so an operator can find and fix it.
    #[error("damaged row in table {table} (id {id}): column {column}: {detail}")]
    Corrupt {
        table: &'static str,
        id: i64,
        column: &'static str,
        detail: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    /// A write refused because it would break an invariant (e.g. two live orders for one
    /// certificate); the message says which.
    #[error("{0}")]
    Conflict(String),
    /// The key and CSR for a new order could not be made; nothing was written.
    #[error("generating the private key and CSR for certificate {certificate} failed: {detail}")]
    KeyGeneration { certificate: String, detail: String },
}

impl StoreError {
    /// Busy/locked databases and I/O hiccups are worth retrying; damaged rows are not.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Corrupt { .. }
            | StoreError::NotFound(_)
            | StoreError::Conflict(_)
            | StoreError::KeyGeneration { .. }
            | StoreError::Migrate(_) => ErrorKind::Permanent,
            _ => ErrorKind::Transient,
        }
    }
}

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Open (creating if missing) and migrate. The database and its WAL files hold
    /// private keys, so they are made readable by the owner only.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        restrict_permissions(path);
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// True when a write transaction can be committed (for `/readyz`).
    pub async fn writable(&self) -> bool {
        sqlx::query("BEGIN IMMEDIATE; ROLLBACK;")
            .execute(&self.pool)
            .await
            .is_ok()
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) {}

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms_pub(ms: i64) -> DateTime<Utc> {
    from_ms(ms)
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
