//! SQLite backups and restores (`hearth backup`, `hearth restore`).
//!
//! - A backup is `VACUUM INTO` a temporary file beside the destination: one
//!   read transaction, so it is a consistent snapshot while the server keeps
//!   writing (WAL readers do not block the writer). The copy is checked
//!   (`PRAGMA integrity_check`, a Hearth schema), synced, and only then
//!   renamed to the destination, so a destination that exists is always a
//!   whole backup.
//! - A restore checks the file first (a SQLite database that passes the
//!   integrity check, with a schema version this binary knows), copies it
//!   beside the data directory's database, checks the copy, and renames it
//!   into place. An existing database is refused unless forced, and even
//!   then it is moved aside (`hearth.db.before-restore-<ms>`, with its WAL
//!   and the search index), never deleted. Any refusal or failure leaves the
//!   data directory as it was.
//!
//! Postgres is backed up with `pg_dump` (`scripts/pg-backup.sh`), not here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use thiserror::Error;

use crate::migrate;

#[derive(Debug, Error)]
pub enum BackupError {
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0} already exists; choose another file or remove it")]
    Exists(PathBuf),
    #[error(
        "{0} already holds a database; restore into an empty data directory, or pass --force (the current one is moved aside, not deleted)"
    )]
    NotEmpty(PathBuf),
    #[error(
        "a hearth node is running on {0} (it holds a node lease): stop it first (a node killed without stopping keeps its lease for at most a minute)"
    )]
    InUse(PathBuf),
    #[error("{path} is not a usable Hearth backup: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error(
        "{path} has schema version {found}, newer than this binary knows ({known}): restore it with the newer hearth that made it"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{0}")]
    Io(String),
    #[error("database error: {0}")]
    Db(String),
}

fn io(what: &str, path: &Path, e: std::io::Error) -> BackupError {
    BackupError::Io(format!("{what} {}: {e}", path.display()))
}

/// What a checked backup file holds.
#[derive(Clone, Debug)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    pub messages: i64,
    pub users: i64,
}

async fn open(path: &Path, query_only: bool) -> Result<SqliteConnection, sqlx::Error> {
    let mut opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10));
    if query_only {
        opts = opts.pragma("query_only", "true");
    }
    opts.connect().await
}

/// Checks that `path` is a whole Hearth database this binary can use.
pub async fn check_file(path: &Path) -> Result<BackupInfo, BackupError> {
    let corrupt = |why: String| BackupError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| io("reading", path, e))?;
    if !meta.is_file() {
        return Err(corrupt("not a file".into()));
    }
    let mut conn = open(path, true).await.map_err(|e| corrupt(e.to_string()))?;
    let result = async {
        let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| corrupt(e.to_string()))?;
        if check != ["ok"] {
            return Err(corrupt(format!(
                "integrity check: {}",
                check.into_iter().take(3).collect::<Vec<_>>().join("; ")
            )));
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| corrupt(format!("no Hearth schema ({e})")))?;
        let version = version.unwrap_or(0);
        let known = migrate::SQLITE.iter().map(|m| m.version).max().unwrap_or(0);
        if version > known {
            return Err(BackupError::Newer {
                path: path.to_path_buf(),
                found: version,
                known,
            });
        }
        let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| corrupt(e.to_string()))?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(BackupInfo {
            path: path.to_path_buf(),
            bytes: meta.len(),
            schema_version: version,
            messages,
            users,
        })
    }
    .await;
    let _ = conn.close().await;
    result
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("syncing", path, e))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Backs up the SQLite database `db` into the new file `to`, while it may
/// be in use.
pub async fn backup_sqlite(db: &Path, to: &Path) -> Result<BackupInfo, BackupError> {
    if !db.is_file() {
        return Err(BackupError::NoDatabase(db.to_path_buf()));
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    }
    let partial = sibling(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let result = async {
        let mut conn = open(db, false)
            .await
            .map_err(|e| BackupError::Db(format!("{}: {e}", db.display())))?;
        let dest = partial
            .to_str()
            .ok_or_else(|| BackupError::Io(format!("{} is not a UTF-8 path", partial.display())))?;
        let done = sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&mut conn)
            .await
            .map_err(|e| BackupError::Db(e.to_string()));
        let _ = conn.close().await;
        done?;
        sync_file(&partial)?;
        let mut info = check_file(&partial).await?;
        std::fs::rename(&partial, to).map_err(|e| io("renaming to", to, e))?;
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        info.path = to.to_path_buf();
        Ok(info)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Whether a live node holds a lease on the database at `db`.
async fn in_use(db: &Path) -> bool {
    let Ok(mut conn) = open(db, true).await else {
        return false;
    };
    let lease: Option<i64> =
        sqlx::query_scalar("SELECT MAX(expires_at) FROM node_leases WHERE expires_at > $1")
            .bind(hearth_types::now_ms())
            .fetch_one(&mut conn)
            .await
            .unwrap_or(None);
    let _ = conn.close().await;
    lease.is_some()
}

/// Restores the backup `from` as `data_dir/hearth.db`. `moved_aside` lists
/// what an existing database (with `force`) was renamed to.
pub async fn restore_sqlite(
    from: &Path,
    data_dir: &Path,
    force: bool,
) -> Result<(BackupInfo, Vec<PathBuf>), BackupError> {
    let info = check_file(from).await?;
    let db = data_dir.join("hearth.db");
    let exists = std::fs::metadata(&db).map(|m| m.len() > 0).unwrap_or(false);
    if exists {
        if !force {
            return Err(BackupError::NotEmpty(db));
        }
        if in_use(&db).await {
            return Err(BackupError::InUse(data_dir.to_path_buf()));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| io("creating", data_dir, e))?;
    let restoring = sibling(&db, ".restoring");
    let _ = std::fs::remove_file(&restoring);
    let copied = async {
        std::fs::copy(from, &restoring).map_err(|e| io("copying to", &restoring, e))?;
        sync_file(&restoring)?;
        check_file(&restoring).await
    }
    .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&restoring);
        return Err(e);
    }
    // Move the current database (with its WAL, which must never meet the
    // restored file) and the search index (it indexes the current data) aside.
    let mut moved = Vec::new();
    let stamp = hearth_types::now_ms();
    for (path, is_dir) in [
        (db.clone(), false),
        (sibling(&db, "-wal"), false),
        (sibling(&db, "-shm"), false),
        (data_dir.join("search"), true),
    ] {
        let present = if is_dir {
            path.is_dir()
        } else {
            path.is_file()
        };
        if present {
            let aside = sibling(&path, &format!(".before-restore-{stamp}"));
            if let Err(e) = std::fs::rename(&path, &aside) {
                // Put back what was moved, so nothing is half done.
                for (from, to) in moved.iter().rev() {
                    let _ = std::fs::rename(to, from);
                }
                let _ = std::fs::remove_file(&restoring);
                return Err(io("moving aside", &path, e));
            }
            moved.push((path, aside));
        }
    }
    if let Err(e) = std::fs::rename(&restoring, &db) {
        for (from, to) in moved.iter().rev() {
            let _ = std::fs::rename(to, from);
        }
        let _ = std::fs::remove_file(&restoring);
        return Err(io("renaming to", &db, e));
    }
    let _ = std::fs::File::open(data_dir).and_then(|d| d.sync_all());
    let mut info = info;
    info.path = db;
    Ok((info, moved.into_iter().map(|(_, aside)| aside).collect()))
}
