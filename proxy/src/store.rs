//! Persistence (PROTOCOL.md §7): one [`Store`] over PostgreSQL (any number of replicas) or SQLite
//! (the embedded default, one replica), through sqlx's `Any` driver so that both backends run the
//! same SQL. The few places where they differ (row locks that skip locked rows, advisory locks)
//! branch on [`Backend`].
//!
//! Layout: [`tenants`], [`accounts`], [`messages`] (intake, listing, deletes), [`admin`] (the
//! instance row, storages, the command log), [`queue`] (claims,
//! leases and batched outcomes for the dispatcher), [`events`] (delivery reports for the sync),
//! [`planner`] (fresh statistics for PostgreSQL's planner while a test fills a new database).
//! Every operation that writes several rows runs in one transaction, and the dispatcher's hot path
//! is batched: one claim per batch of rows, one transaction per batch of outcomes.

pub mod accounts;
pub mod admin;
pub mod events;
pub mod messages;
pub mod planner;
pub mod queue;
pub mod secrets;
pub mod sync_state;
pub mod tenants;

use std::{path::PathBuf, sync::Arc, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::Migrator,
};

use crate::crypto::Cipher;

static PG_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: shared by replicas, row locks with SKIP LOCKED.
    Postgres,
    /// SQLite: one replica, one writer at a time.
    Sqlite,
}

impl Backend {
    /// Name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// Failures of the store, named by what the caller must do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error: a 503 for the API, a retry
    /// for the loops.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed at startup.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `GMP_DB_PATH` is neither a PostgreSQL URL nor a SQLite path (its password, if any,
    /// already masked: see [`without_password`]).
    #[error("GMP_DB_PATH {0:?} is neither a postgres:// URL nor a SQLite path")]
    BadUrl(String),
    /// A stored secret could not be decrypted (wrong key).
    #[error("stored secret cannot be decrypted: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    /// A stored JSON column is not valid JSON.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// True when the database is away or refusing for the moment (connection refused or broken,
    /// pool timeouts, server shutting down or starting up, too many connections, database not
    /// accepting connections, serialization failures), false when it refused the statement itself:
    /// PostgreSQL's classes 22 (data), 23 (integrity) and 42 (syntax or access), SQLite's errors
    /// other than busy and locked, and errors of ours (decoding a row). Only the latter are given up
    /// on.
    pub fn connection_lost(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                let Some(code) = db.code() else {
                    return true;
                };
                // PostgreSQL's SQLSTATEs have five characters, often all digits ("55000": database
                // not accepting connections); SQLite's result codes have at most four digits.
                if code.len() < 5 && code.bytes().all(|b| b.is_ascii_digit()) {
                    // SQLite's result codes: only busy and locked pass.
                    return matches!(code.as_ref(), "5" | "6" | "261" | "262" | "517");
                }
                !["22", "23", "42"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            _ => false,
        }
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database of one replica: a pool, its backend and the cipher for secrets at rest.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    cipher: Arc<Cipher>,
    /// The claim's list of blocked tenants and when it was read (see [`queue::BLOCKED_TTL`]).
    blocked: Arc<std::sync::Mutex<Option<(std::time::Instant, queue::Blocked)>>>,
}

/// Where a `GMP_DB_PATH` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A PostgreSQL URL.
    Postgres(String),
    /// A SQLite file.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database.
    SqliteMemory,
}

impl DbLocation {
    /// Parses `GMP_DB_PATH` as the contract says (§7).
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DbLocation::Postgres(raw.to_string()));
        }
        if raw == ":memory:" || raw == "sqlite::memory:" {
            return Ok(DbLocation::SqliteMemory);
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(DbLocation::SqliteFile(PathBuf::from(p))),
            None if !raw.is_empty() && !raw.contains("://") => {
                Ok(DbLocation::SqliteFile(PathBuf::from(raw)))
            }
            _ => Err(StoreError::BadUrl(without_password(raw))),
        }
    }

    /// The backend this location uses.
    pub fn backend(&self) -> Backend {
        match self {
            DbLocation::Postgres(_) => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// A database URL fit for messages: the password of `scheme://user:password@host` replaced by
/// `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{masked}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl Store {
    /// Opens the database, applies the embedded migrations and returns the store.
    pub async fn open(location: &DbLocation, max_connections: u32, cipher: Cipher) -> Result<Self> {
        install_default_drivers();
        let (url, max) = match location {
            DbLocation::Postgres(url) => (url.clone(), max_connections.max(2)),
            DbLocation::SqliteFile(p) => (format!("sqlite://{}?mode=rwc", p.display()), 4),
            // One connection: every connection to `:memory:` would be a different database.
            DbLocation::SqliteMemory => ("sqlite::memory:".to_string(), 1),
        };
        let backend = location.backend();
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every use would double the round trips of the hot path; a dead
            // connection shows up as an error and the loops retry.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(sqlx::raw_sql(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                        ))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Postgres => PG_MIGRATOR.run(&pool).await?,
            Backend::Sqlite => SQLITE_MIGRATOR.run(&pool).await?,
        }
        Ok(Store {
            pool,
            backend,
            cipher: Arc::new(cipher),
            blocked: Arc::default(),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool (tests and the instance row).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The cipher for secrets at rest.
    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads first cannot upgrade after another writer committed, and
    /// fails with `database is locked` instead of waiting.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Creates the `instance` row if missing.
    pub async fn ensure_instance(&self, name: &str) -> Result<()> {
        let now = now_text();
        sqlx::query(
            "INSERT INTO instance (id, name, edition, created_at, updated_at) \
             VALUES (1, $1, 'ee', $2, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(name)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Current Unix time in seconds.
pub fn now_ts() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Current Unix time in microseconds (enqueue order with sub-second precision).
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Current time as the contract's resource timestamp, `YYYY-MM-DD HH:MM:SS` UTC.
pub fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Integer boolean of the schema.
pub(crate) fn b(v: bool) -> i64 {
    i64::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_locations_follow_the_contract() {
        assert_eq!(
            DbLocation::parse(":memory:").unwrap(),
            DbLocation::SqliteMemory
        );
        assert_eq!(
            DbLocation::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbLocation::parse("sqlite:/tmp/x.db").unwrap(),
            DbLocation::SqliteFile("/tmp/x.db".into())
        );
        assert_eq!(
            DbLocation::parse("./mail.db").unwrap(),
            DbLocation::SqliteFile("./mail.db".into())
        );
        assert!(DbLocation::parse("mysql://x").is_err());
        assert!(DbLocation::parse("").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        let err = DbLocation::parse("mysql://app:hunter2@db:3306/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(
            err.to_string().contains("mysql://app:***@db:3306/x"),
            "{err}"
        );
        for (url, shown) in [
            ("postgres://u:p@w:d@h/db?x=1", "postgres://u:***@h/db?x=1"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("./x.db", "./x.db"),
        ] {
            assert_eq!(without_password(url), shown);
        }
    }
}
