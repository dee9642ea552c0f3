//! Choosing and opening a backend.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::sql::{PostgresStore, SqliteStore};
use crate::{Store, StoreError, StoreResult};

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (created if missing).
    Sqlite(std::path::PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

/// Opens the backend and runs migrations.
pub async fn connect(backend: &Backend, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite(path) => return connect_sqlite_migrated(path, max_connections).await,
        Backend::Postgres(url) => Arc::new(connect_postgres(url, max_connections).await?),
    };
    store.migrate().await?;
    Ok(store)
}

/// Opens and migrates a SQLite file, waiting out other processes that are
/// opening it at the same moment: switching a new file to WAL needs it to
/// itself, and SQLite answers "database is locked" at once there instead
/// of waiting the busy timeout (several nodes, or the server and a `hearth`
/// command, starting together on one file).
async fn connect_sqlite_migrated(path: &Path, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let store: Arc<dyn Store> = Arc::new(connect_sqlite(path, max_connections).await?);
            store.migrate().await?;
            Ok::<_, StoreError>(store)
        }
        .await;
        match attempt {
            Err(e)
                if e.to_string().contains("database is locked")
                    && std::time::Instant::now() < deadline =>
            {
                tracing::debug!(error = %e, "the SQLite file is busy being opened elsewhere; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

pub async fn connect_sqlite(path: &Path, max_connections: u32) -> StoreResult<SqliteStore> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    // WAL lets readers run beside the single writer; NORMAL sync is durable
    // across process crashes (the WAL is fsynced at checkpoints) and several
    // times faster than FULL. busy_timeout turns writer contention into waiting.
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .pragma("temp_store", "memory");
    // One writer connection (see `sql.rs` for why); readers get the rest.
    // Page caches: the writer's survives its own commits, so a large one pays
    // (64 MiB). A reader's is thrown away whenever it starts a read after any
    // commit (WAL mode checks the WAL index and resets the pager), which on a
    // chat server is nearly every read; a large one there only holds copies
    // of pages the OS already caches, once per reader: at 15,000 sign-ins of
    // distinct accounts that was ~2.7 KB per connection (docs/benchmarks.md,
    // issue 15). 256 KiB (64 pages) holds a query's working set; the 1M-
    // message history benchmark measured the same with 256 KiB, 1 MiB and
    // 64 MiB per reader.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts.clone().pragma("cache_size", "-65536"))
        .await?;
    let read = SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts.pragma("cache_size", "-256"))
        .await?;
    Ok(SqliteStore::new(read, write))
}

pub async fn connect_postgres(url: &str, max_connections: u32) -> StoreResult<PostgresStore> {
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("bad DATABASE_URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await?;
    Ok(PostgresStore::new(pool))
}
