//! All SQL: opening the SQLite database (WAL, busy timeout, foreign keys, migrations) and
//! typed reads/writes of certificates, orders, authorizations, events and the cleanup journal.

mod acme;
mod adopt;
mod ca_cancel;
mod damaged;
mod events;
mod forget;
mod journal;
mod orders;
mod overview;
mod pause;
mod recovery;
mod rows;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use acme::AcmeAccount;
pub use adopt::Adoption;
pub use ca_cancel::OpenAtCa;
pub use damaged::{DAMAGED_KEY_REASON, DamagedJournal, DamagedOrder};
pub use events::NewEvent;
pub use forget::Forget;
pub use journal::JournalEntry;
pub use orders::{CertificateRecord, ListedState, NewAuthz, NewOrder, OrderSummary};
pub use overview::{LatestOrder, OrderOverview};
pub use pause::Paused;
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
    /// A read-only open found no database file; nothing was created.
    #[error(
        "no database at {path} (dcvd has not run with this configuration, or the path is wrong)"
    )]
    Missing { path: PathBuf },
    /// A read-only open found a schema other than the one this binary was built for.
    #[error(
        "database {path} is at schema version {found}, this dcvd expects {expected}: start the \
         daemon of this version (it migrates), or use the dcvd that matches"
    )]
    SchemaMismatch {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
}

impl StoreError {
    /// Busy/locked databases and I/O hiccups are worth retrying; damaged rows are not.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Corrupt { .. }
            | StoreError::NotFound(_)
            | StoreError::Conflict(_)
            | StoreError::KeyGeneration { .. }
            | StoreError::Migrate(_)
            | StoreError::Missing { .. }
            | StoreError::SchemaMismatch { .. } => ErrorKind::Permanent,
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

    /// Open an existing database for reading only: no file is created, no migration runs,
    /// nothing is written. The schema must be exactly the one this binary's migrations
    /// build, so a newer or older CLI never reads (or changes) a running daemon's database
    /// under it.
    pub async fn open_readonly(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(open_err)?
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        let expected = sqlx::migrate!("./migrations")
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let has_table: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = '_sqlx_migrations')",
        )
        .fetch_one(&pool)
        .await?;
        let found: i64 = if has_table {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1",
            )
            .fetch_one(&pool)
            .await?
            .unwrap_or(0)
        } else {
            0
        };
        if found != expected {
            pool.close().await;
            return Err(StoreError::SchemaMismatch {
                path: path.to_path_buf(),
                found,
                expected,
            });
        }
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
