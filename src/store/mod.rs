//! Persistence with sqlx, on SQLite (the embedded default) and PostgreSQL (production and
//! multi-replica).
//!
//! Why `sqlx::Any` and not two typed pools: every query here is written once, in the
//! portable subset both databases share (`$1` placeholders, `ON CONFLICT`, `RETURNING`),
//! and the schema keeps to types `Any` moves losslessly between them: BIGINT epoch
//! milliseconds for times, BIGINT 0/1 for flags, TEXT (JSON where structured) and DOUBLE.
//! The DDL differs per backend, so each has its own migrations directory. The one place
//! the backends behave differently — claiming outbox rows — branches on `Backend`.

pub mod bulk;
pub mod cases;
pub mod cursors;
pub mod escalation;
pub mod jobs;
pub mod outbox;
pub mod reports;
pub mod spikes;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Connection as _, Executor};
use std::str::FromStr;
use std::time::Duration;

pub use cases::{CaseFilter, CaseRow, EventRow, MentionRow, MessageRef, NewCase};
pub use outbox::OutboxRow;

pub type Tx<'a> = sqlx::Transaction<'a, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/postgres");

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite://…`). Creates the SQLite file's folder.
    /// `acquire_timeout` bounds how long a caller waits for a connection: short, so that
    /// while the database is down requests fail fast instead of queueing.
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("unsupported database URL scheme (use postgres://… or sqlite://…)");
        };
        if backend == Backend::Sqlite {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or("");
            if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
        }
        let opts = AnyConnectOptions::from_str(url).context("parsing the database URL")?;
        // One direct connection first: the pool would only say "pool timed out", while this
        // names the real cause (refused, unknown host, bad password, missing database).
        let first = tokio::time::timeout(Duration::from_secs(10), sqlx::AnyConnection::connect_with(&opts)).await;
        match first {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => anyhow::bail!("cannot connect to {}: {e}", describe_url(url)),
            Err(_) => anyhow::bail!("cannot connect to {}: no answer within 10 s", describe_url(url)),
        }
        // SQLite waits this long for another writer before "database is locked": as long as
        // a request waits for a connection, so a held lock is answered like an outage.
        let busy_ms = acquire_timeout.as_millis().clamp(100, 60_000) as u64;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { max_connections.min(8) } else { max_connections })
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets the CLI and `serve` share the file; busy_timeout waits out
                        // the other writer instead of failing at once.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                        );
                        conn.execute(pragmas.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .with_context(|| format!("connecting to {}", describe_url(url)))?;
        Ok(Store { pool, backend })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let m = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        m.run(&self.pool).await.context("running database migrations")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so a concurrent writer is waited for (busy_timeout) instead of
    /// failing at the first write of a transaction that started by reading.
    ///
    /// The BEGIN runs in a task of its own, so it always finishes: sqlx 0.8 leaves a
    /// connection inside an open transaction when `begin()` is dropped while its BEGIN is
    /// in flight (a request timeout, a `select!`), and the next user of that connection
    /// then runs inside the leaked transaction — Postgres warns "there is already a
    /// transaction in progress", and plain writes on it are never committed. A transaction
    /// nobody waits for any more is dropped in that task, which rolls it back.
    pub async fn begin(&self) -> anyhow::Result<Tx<'static>> {
        let (pool, backend) = (self.pool.clone(), self.backend);
        let tx = tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        })
        .await
        .context("starting a transaction")?;
        tx.context("starting a transaction")
    }

    /// Readiness: the database answers a trivial query within `limit`.
    pub async fn ping(&self, limit: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map_err(|_| anyhow::anyhow!("the database did not answer within {limit:?}"))??;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True for errors worth retrying the whole transaction for: SQLite's writer lock and
/// Postgres serialization/deadlock failures.
pub fn is_contention(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<sqlx::Error>().is_some_and(|e| match e {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                matches!(code.as_ref(), "5" | "6" | "517" | "261" | "40001" | "40P01")
                    || db.message().contains("database is locked")
            }
            _ => false,
        })
    })
}

/// True when the database cannot be reached (down, restarting, network cut, pool unable
/// to open a connection in time): callers answer "try again later" at once instead of
/// retrying, and nothing was changed.
pub fn is_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<sqlx::Error>().is_some_and(|e| match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // Postgres: connection exceptions (08…), shutting down or starting up (57P0…).
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                code.starts_with("08") || code.starts_with("57P")
            }
            _ => false,
        })
    })
}

/// The database a URL points at, for error messages: host, port, database and user —
/// never the password.
pub fn describe_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        return format!("the SQLite database {}", path.split('?').next().unwrap_or(""));
    }
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("localhost");
            let port = u.port().unwrap_or(5432);
            let db = u.path().trim_start_matches('/');
            let user = if u.username().is_empty() { "(default user)" } else { u.username() };
            format!("PostgreSQL at {host}:{port} (database {db:?}, user {user})")
        }
        Err(_) => "the database (DATABASE_URL could not be parsed)".into(),
    }
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
