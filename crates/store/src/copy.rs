//! `hearth migrate-data`: a SQLite instance copied into a Postgres database,
//! every table, IDs unchanged, resumable, verified.
//!
//! How it works, and why:
//! - **Every table, generically.** The tables, their columns and types, their
//!   primary keys and their foreign keys are read from the target's catalog
//!   (the migrations made it), and the source must have exactly the same
//!   tables and columns. So a table added by a new migration is copied without
//!   a change here; the only list is [`EXCLUDED`], tables that must not be
//!   copied, each with its reason. Tables are copied parents first (a
//!   topological order of the foreign keys, ties by name).
//! - **Batches by primary key.** Each table is read in primary-key order with
//!   keyset pagination (`WHERE (pk…) > (last…)`), and each batch is one
//!   multi-row `INSERT` committed in the same transaction as the progress row
//!   that names its last key ([`PROGRESS_TABLE`], in the target). So the target
//!   never holds a row the progress does not account for, and an interrupted
//!   run (killed, or a failed connection) continues after its last committed
//!   batch when started again.
//! - **The source is only read.** It is opened with `query_only`, its schema
//!   must be the version this binary knows (it is never migrated here), and
//!   a run reads it inside one transaction, so a run sees one snapshot.
//! - **The target is refused unless empty** (every table without rows) or
//!   holding this copier's own unfinished run of the same source; a refusal
//!   happens before anything is written, migrations included.
//! - **Verified.** At the end every table's row count and checksum are
//!   computed on both sides, the same way: each row canonicalized
//!   ([`encode_row`]: typed values, length-prefixed), hashed with SHA-256, and
//!   the first 128 bits of the hashes summed. The sum does not depend on row
//!   order, so the engines' different text collations cannot matter. Only
//!   when every table matches is the progress table dropped.
//!
//! Knows nothing of the server's configuration or of the terminal: the caller
//! passes paths and a progress callback.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use thiserror::Error;

use crate::{Store, StoreError, migrate};

/// The target's table that records a run's progress: one row per table (its
/// last copied key, rows copied, done) and one `''` row naming the source.
/// Dropped when a run has verified.
pub const PROGRESS_TABLE: &str = "hearth_data_migration";

/// Tables not copied, and why. Every other table of the schema is.
pub const EXCLUDED: &[(&str, &str)] = &[
    (
        "schema_migrations",
        "the target's migrations record their own versions (the source's must be the same)",
    ),
    (
        "node_leases",
        "leases of the processes running on a database, never of another one",
    ),
    (PROGRESS_TABLE, "this copier's own progress"),
];

/// Why a data migration stopped. Nothing here alters the source; a refusal
/// leaves the target as it was.
#[derive(Debug, Error)]
pub enum CopyError {
    #[error("source: {0}")]
    Source(String),
    #[error(
        "the source database has schema version {found} but this binary expects {expected}: {hint}"
    )]
    SourceVersion {
        found: i64,
        expected: i64,
        hint: &'static str,
    },
    #[error(
        "a hearth node holds a lease on the source database for {secs} s more: stop the server first (a node killed without stopping keeps its lease for at most a minute)"
    )]
    SourceInUse { secs: i64 },
    #[error(
        "the target database is not empty ({0}); migrate-data only copies into an empty database, and left it as it was"
    )]
    TargetNotEmpty(String),
    #[error(
        "the target holds an unfinished migration from another source ({recorded}); finish that one, or start over on an empty database"
    )]
    OtherSource { recorded: String },
    #[error("the schemas differ: {0}")]
    Schema(String),
    #[error(
        "verification failed: {0}; the progress table {PROGRESS_TABLE} is kept, so running again re-verifies"
    )]
    Verify(String),
    #[error("stopped after {0} batches as asked (a test option); run again to continue")]
    Injected(u64),
    #[error("target: {0}")]
    Target(String),
}

impl From<StoreError> for CopyError {
    fn from(e: StoreError) -> Self {
        CopyError::Target(e.to_string())
    }
}

fn target_err(e: sqlx::Error) -> CopyError {
    CopyError::Target(e.to_string())
}

fn source_err(e: sqlx::Error) -> CopyError {
    CopyError::Source(e.to_string())
}

/// How a run behaves.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Rows per batch (capped so a batch's parameters stay under Postgres's 65,535).
    pub batch_rows: usize,
    /// Stop with [`CopyError::Injected`] after this many committed batches
    /// (tests of resumption).
    pub fail_after_batches: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            batch_rows: 2000,
            fail_after_batches: None,
        }
    }
}

/// What the progress callback is told.
#[derive(Clone, Debug)]
pub enum CopyProgress<'a> {
    /// The run starts: resuming an earlier one or not, and the rows to copy.
    Start { resumed: bool, total_rows: u64 },
    /// A table's rows so far (after each batch; `done == total` at its end).
    Table {
        table: &'a str,
        done: u64,
        total: u64,
    },
    /// Counting and checksumming a table on both sides.
    Verifying { table: &'a str },
}

/// One table's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    pub table: String,
    pub rows: u64,
    /// Hex of the order-independent checksum (equal on both sides).
    pub checksum: String,
}

#[derive(Clone, Debug)]
pub struct CopySummary {
    pub tables: Vec<TableSummary>,
    /// Rows written by this run (less than the total when it resumed).
    pub copied_rows: u64,
    pub resumed: bool,
    /// From the start to the last row written (opening and migrating included).
    pub copy_elapsed: Duration,
    /// The whole run, verification included.
    pub elapsed: Duration,
    /// Postgres sequences set past the copied values.
    pub sequences_fixed: u32,
}

impl CopySummary {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// The SQLite file of `path`: the path itself if it is a file, else the
/// data directory's `hearth.db`.
pub fn sqlite_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("hearth.db")
    } else {
        path.to_path_buf()
    }
}

/// A column's type, as the target declares it; how values are read on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int8,
    Int4,
    Text,
    Bool,
    Bytes,
    Float,
}

impl Kind {
    fn from_pg(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" => Kind::Int8,
            "integer" | "smallint" => Kind::Int4,
            "text" | "character varying" | "character" => Kind::Text,
            "boolean" => Kind::Bool,
            "bytea" => Kind::Bytes,
            "double precision" => Kind::Float,
            _ => return None,
        })
    }
}

/// One value, typed (a NULL keeps its column's type, for binding).
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
    Float(Option<f64>),
}

#[derive(Clone, Debug)]
struct Table {
    name: String,
    /// (name, kind) in the target's column order.
    columns: Vec<(String, Kind)>,
    /// Indexes into `columns`, in the primary key's order.
    key: Vec<usize>,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|i| quote(&self.columns[*i].0))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The page query: the first page, or the one after a key.
    fn page_sql(&self, after: bool) -> String {
        let mut sql = format!("SELECT {} FROM {}", self.column_list(), quote(&self.name));
        if after {
            let params = (1..=self.key.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            if self.key.len() == 1 {
                sql.push_str(&format!(" WHERE {} > {params}", self.key_list()));
            } else {
                sql.push_str(&format!(" WHERE ({}) > ({params})", self.key_list()));
            }
        }
        let limit = self.key.len() + 1;
        let limit = if after { limit } else { 1 };
        sql.push_str(&format!(" ORDER BY {} LIMIT ${limit}", self.key_list()));
        sql
    }

    fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.key.iter().map(|i| row[*i].clone()).collect()
    }

    /// Rows per batch: Postgres takes at most 65,535 parameters a statement.
    fn batch_rows(&self, wanted: usize) -> usize {
        wanted.clamp(1, 60_000 / self.columns.len().max(1))
    }

    fn insert_sql(&self, rows: usize) -> String {
        let n = self.columns.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote(&self.name),
            self.column_list()
        );
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..n {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * n + c + 1));
            }
            sql.push(')');
        }
        sql
    }
}

// ---- canonical encoding: checksums and saved keys ----

/// A row as bytes, the same on both backends: per value a tag (0 NULL,
/// 1 integer, 2 text, 3 boolean, 4 bytes, 5 float) and its payload (integers
/// and floats 8 bytes big-endian, text and bytes length-prefixed).
fn encode_row(values: &[Value], out: &mut Vec<u8>) {
    fn var(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
        out.extend_from_slice(b);
    }
    for v in values {
        match v {
            Value::Int(None)
            | Value::Text(None)
            | Value::Bool(None)
            | Value::Bytes(None)
            | Value::Float(None) => out.push(0),
            Value::Int(Some(i)) => {
                out.push(1);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Text(Some(s)) => var(out, 2, s.as_bytes()),
            Value::Bool(Some(b)) => out.extend_from_slice(&[3, u8::from(*b)]),
            Value::Bytes(Some(b)) => var(out, 4, b),
            Value::Float(Some(f)) => {
                out.push(5);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
        }
    }
}

/// The inverse of [`encode_row`] for a saved key (never NULL).
fn decode_key(mut b: &[u8]) -> Option<Vec<Value>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn eight(b: &mut &[u8]) -> Option<[u8; 8]> {
        take(b, 8)?.try_into().ok()
    }
    let mut out = Vec::new();
    while let Some(tag) = take(&mut b, 1) {
        out.push(match tag[0] {
            1 => Value::Int(Some(i64::from_be_bytes(eight(&mut b)?))),
            2 | 4 => {
                let n = usize::try_from(u64::from_be_bytes(eight(&mut b)?)).ok()?;
                let bytes = take(&mut b, n)?.to_vec();
                if tag[0] == 2 {
                    Value::Text(Some(String::from_utf8(bytes).ok()?))
                } else {
                    Value::Bytes(Some(bytes))
                }
            }
            3 => Value::Bool(Some(take(&mut b, 1)?[0] != 0)),
            5 => Value::Float(Some(f64::from_bits(u64::from_be_bytes(eight(&mut b)?)))),
            _ => return None,
        });
    }
    Some(out)
}

/// Rows and the wrapping sum of their hashes' first 128 bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Checksum {
    rows: u64,
    sum: u128,
}

impl Checksum {
    fn add(&mut self, row: &[Value], buf: &mut Vec<u8>) {
        buf.clear();
        encode_row(row, buf);
        let digest = Sha256::digest(&buf[..]);
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
        self.rows += 1;
    }
    fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

// ---- reading rows ----

fn sqlite_value(row: &SqliteRow, i: usize, kind: Kind) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        Kind::Int8 | Kind::Int4 => Value::Int(row.try_get(i)?),
        Kind::Text => Value::Text(row.try_get(i)?),
        Kind::Bool => Value::Bool(row.try_get(i)?),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
        Kind::Float => Value::Float(row.try_get(i)?),
    })
}

fn pg_value(row: &PgRow, i: usize, kind: Kind) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        Kind::Int8 => Value::Int(row.try_get(i)?),
        Kind::Int4 => {
            // smallint and integer both widen to the same integer.
            let v = row
                .try_get::<Option<i32>, _>(i)
                .or_else(|_| row.try_get::<Option<i16>, _>(i).map(|v| v.map(i32::from)))?;
            Value::Int(v.map(i64::from))
        }
        Kind::Text => Value::Text(row.try_get(i)?),
        Kind::Bool => Value::Bool(row.try_get(i)?),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
        Kind::Float => Value::Float(row.try_get(i)?),
    })
}

macro_rules! bind_values {
    ($q:expr, $values:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                Value::Int(x) => q.bind(x.clone()),
                Value::Text(x) => q.bind(x.clone()),
                Value::Bool(x) => q.bind(x.clone()),
                Value::Bytes(x) => q.bind(x.clone()),
                Value::Float(x) => q.bind(x.clone()),
            };
        }
        q
    }};
}

/// The next page of a table from SQLite, after `after` (None: the first).
async fn sqlite_page(
    conn: &mut SqliteConnection,
    table: &Table,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Vec<Value>>, CopyError> {
    let sql = table.page_sql(after.is_some());
    let q = sqlx::query::<sqlx::Sqlite>(AssertSqlSafe(sql));
    let q = bind_values!(q, after.unwrap_or(&[]));
    let rows = q
        .bind(limit as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(source_err)?;
    rows.iter()
        .map(|r| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| {
                    sqlite_value(r, i, *kind).map_err(|e| {
                        CopyError::Source(format!(
                            "{}.{name}: a value that is not {kind:?}: {e}",
                            table.name
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

async fn pg_page(
    pool: &PgPool,
    table: &Table,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Vec<Value>>, CopyError> {
    let sql = table.page_sql(after.is_some());
    let q = sqlx::query::<sqlx::Postgres>(AssertSqlSafe(sql));
    let q = bind_values!(q, after.unwrap_or(&[]));
    let rows = q
        .bind(limit as i64)
        .fetch_all(pool)
        .await
        .map_err(target_err)?;
    rows.iter()
        .map(|r| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| pg_value(r, i, *kind).map_err(target_err))
                .collect()
        })
        .collect()
}

// ---- schemas ----

/// The target's tables (all but [`EXCLUDED`]), parents before children.
async fn target_tables(pool: &PgPool) -> Result<Vec<Table>, CopyError> {
    let cols: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(pool)
    .await
    .map_err(target_err)?;
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT cl.relname::text, a.attname::text \
         FROM pg_index i \
         JOIN pg_class cl ON cl.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = cl.relnamespace \
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = cl.oid AND a.attnum = k.attnum \
         WHERE i.indisprimary AND n.nspname = current_schema() \
         ORDER BY cl.relname, k.ord",
    )
    .fetch_all(pool)
    .await
    .map_err(target_err)?;
    let fks: Vec<(String, String)> = sqlx::query_as(
        "SELECT cl.relname::text, rf.relname::text FROM pg_constraint co \
         JOIN pg_class cl ON cl.oid = co.conrelid \
         JOIN pg_class rf ON rf.oid = co.confrelid \
         JOIN pg_namespace n ON n.oid = cl.relnamespace \
         WHERE co.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(pool)
    .await
    .map_err(target_err)?;

    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for (t, c, ty) in cols {
        if is_excluded(&t) {
            continue;
        }
        let kind = Kind::from_pg(&ty).ok_or_else(|| {
            CopyError::Schema(format!(
                "{t}.{c} has type {ty}, which the copier does not know yet (crates/store/src/copy.rs, Kind)"
            ))
        })?;
        tables
            .entry(t.clone())
            .or_insert_with(|| Table {
                name: t,
                columns: Vec::new(),
                key: Vec::new(),
            })
            .columns
            .push((c, kind));
    }
    for (t, c) in keys {
        if let Some(table) = tables.get_mut(&t)
            && let Some(i) = table.columns.iter().position(|(n, _)| *n == c)
        {
            table.key.push(i);
        }
    }
    if let Some(t) = tables.values().find(|t| t.key.is_empty()) {
        return Err(CopyError::Schema(format!(
            "table {} has no primary key; the copier pages by it",
            t.name
        )));
    }
    // Parents first: Kahn's algorithm, ties by name; self-references ignored.
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = tables
        .keys()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for (child, parent) in &fks {
        if child != parent
            && tables.contains_key(parent)
            && let Some(p) = parents.get_mut(child.as_str())
        {
            p.insert(parent.as_str());
        }
    }
    let mut order: Vec<String> = Vec::new();
    while !parents.is_empty() {
        let Some(next) = parents
            .iter()
            .find(|(_, p)| p.is_empty())
            .map(|(t, _)| t.to_string())
        else {
            return Err(CopyError::Schema(format!(
                "the foreign keys of {:?} form a cycle",
                parents.keys().collect::<Vec<_>>()
            )));
        };
        parents.remove(next.as_str());
        for p in parents.values_mut() {
            p.remove(next.as_str());
        }
        order.push(next);
    }
    Ok(order
        .into_iter()
        .filter_map(|t| tables.remove(&t))
        .collect())
}

fn is_excluded(table: &str) -> bool {
    EXCLUDED.iter().any(|(t, _)| *t == table)
}

/// The source's tables and columns must be the target's.
async fn check_source_schema(
    conn: &mut SqliteConnection,
    tables: &[Table],
) -> Result<(), CopyError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(source_err)?;
    let mut source: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (t, c) in rows {
        if !is_excluded(&t) {
            source.entry(t).or_default().insert(c);
        }
    }
    let target: BTreeMap<String, BTreeSet<String>> = tables
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.columns.iter().map(|(c, _)| c.clone()).collect(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (t, cols) in &source {
        match target.get(t) {
            None => problems.push(format!("table {t} is only in the source")),
            Some(tc) if tc != cols => problems.push(format!(
                "table {t} has columns {cols:?} in the source but {tc:?} in the target"
            )),
            Some(_) => {}
        }
    }
    for t in target.keys().filter(|t| !source.contains_key(*t)) {
        problems.push(format!("table {t} is only in the target"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CopyError::Schema(problems.join("; ")))
    }
}

// ---- the source ----

/// Opens the source for reading only, and checks it is a Hearth database of
/// this binary's schema version that no node is running on.
async fn open_source(path: &Path) -> Result<SqliteConnection, CopyError> {
    if !path.is_file() {
        return Err(CopyError::Source(format!(
            "no SQLite database at {}",
            path.display()
        )));
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .pragma("query_only", "true")
        .busy_timeout(Duration::from_secs(10));
    let mut conn = opts
        .connect()
        .await
        .map_err(|e| CopyError::Source(format!("{}: {e}", path.display())))?;
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| {
            CopyError::Source(format!("{} is not a Hearth database ({e})", path.display()))
        })?;
    let expected: BTreeSet<i64> = migrate::SQLITE.iter().map(|m| m.version).collect();
    let found: BTreeSet<i64> = versions.into_iter().collect();
    if found != expected {
        let f = found.iter().max().copied().unwrap_or(0);
        let e = expected.iter().max().copied().unwrap_or(0);
        return Err(CopyError::SourceVersion {
            found: f,
            expected: e,
            hint: if f > e {
                "use the newer hearth that wrote it"
            } else {
                "run `hearth migrate` on it with this binary first"
            },
        });
    }
    let lease: Option<i64> =
        sqlx::query_scalar("SELECT MAX(expires_at) FROM node_leases WHERE expires_at > $1")
            .bind(hearth_types::now_ms())
            .fetch_one(&mut conn)
            .await
            .map_err(source_err)?;
    if let Some(until_ms) = lease {
        let secs = (until_ms - hearth_types::now_ms() + 999) / 1000;
        return Err(CopyError::SourceInUse { secs });
    }
    Ok(conn)
}

// ---- the target ----

/// What the target holds before anything is written.
enum TargetState {
    Empty,
    /// This copier's unfinished run of the same source.
    Resumable,
}

async fn inspect_target(pool: &PgPool, source: &str) -> Result<TargetState, CopyError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
    )
    .fetch_all(pool)
    .await
    .map_err(target_err)?;
    if tables.iter().any(|t| t == PROGRESS_TABLE) {
        let recorded: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT source FROM {PROGRESS_TABLE} WHERE table_name = ''"
        )))
        .fetch_optional(pool)
        .await
        .map_err(target_err)?;
        let recorded = recorded.unwrap_or_default();
        if recorded != source {
            return Err(CopyError::OtherSource { recorded });
        }
        return Ok(TargetState::Resumable);
    }
    let mut filled = Vec::new();
    for t in tables.iter().filter(|t| *t != "schema_migrations") {
        let any: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {})",
            quote(t)
        )))
        .fetch_one(pool)
        .await
        .map_err(target_err)?;
        if any {
            filled.push(t.clone());
        }
    }
    if filled.is_empty() {
        Ok(TargetState::Empty)
    } else {
        Err(CopyError::TargetNotEmpty(format!(
            "rows in {}",
            filled.join(", ")
        )))
    }
}

struct Done {
    last_key: Option<Vec<Value>>,
    rows: u64,
    done: bool,
}

async fn progress_of(pool: &PgPool, table: &str) -> Result<Done, CopyError> {
    let row: Option<(Option<Vec<u8>>, i64, bool)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT last_key, rows, done FROM {PROGRESS_TABLE} WHERE table_name = $1"
    )))
    .bind(table)
    .fetch_optional(pool)
    .await
    .map_err(target_err)?;
    let Some((key, rows, done)) = row else {
        return Ok(Done {
            last_key: None,
            rows: 0,
            done: false,
        });
    };
    let last_key = match key {
        Some(k) => Some(
            decode_key(&k)
                .ok_or_else(|| CopyError::Target(format!("an unreadable saved key for {table}")))?,
        ),
        None => None,
    };
    Ok(Done {
        last_key,
        rows: u64::try_from(rows).unwrap_or(0),
        done,
    })
}

async fn save_progress(
    tx: &mut sqlx::PgConnection,
    table: &str,
    key: Option<&[Value]>,
    rows: u64,
    done: bool,
) -> Result<(), CopyError> {
    let key = key.map(|k| {
        let mut b = Vec::new();
        encode_row(k, &mut b);
        b
    });
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {PROGRESS_TABLE} (table_name, last_key, rows, done, source, updated_at) \
         VALUES ($1, $2, $3, $4, '', $5) \
         ON CONFLICT (table_name) DO UPDATE SET last_key = EXCLUDED.last_key, rows = EXCLUDED.rows, \
         done = EXCLUDED.done, updated_at = EXCLUDED.updated_at"
    )))
    .bind(table)
    .bind(key)
    .bind(i64::try_from(rows).unwrap_or(i64::MAX))
    .bind(done)
    .bind(hearth_types::now_ms())
    .execute(&mut *tx)
    .await
    .map_err(target_err)?;
    Ok(())
}

/// Sets every sequence owned by a copied column (serial or identity) past
/// the column's largest value. Hearth's IDs are snowflakes, so today there
/// are none; a future table with one is handled here.
async fn fix_sequences(pool: &PgPool, tables: &[Table]) -> Result<u32, CopyError> {
    let mut fixed = 0;
    for t in tables {
        for (c, _) in &t.columns {
            let seq: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
                .bind(quote(&t.name))
                .bind(c)
                .fetch_one(pool)
                .await
                .map_err(target_err)?;
            if let Some(seq) = seq {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT setval($1, COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
                    quote(c),
                    quote(&t.name)
                )))
                .bind(seq)
                .execute(pool)
                .await
                .map_err(target_err)?;
                fixed += 1;
            }
        }
    }
    Ok(fixed)
}

/// One batch and its progress row, in one transaction.
async fn write_batch(
    pool: &PgPool,
    t: &Table,
    rows: &[Vec<Value>],
    insert_full: &str,
    full_rows: usize,
    last: Option<&[Value]>,
    rows_after: u64,
) -> Result<(), CopyError> {
    let mut tx = pool.begin().await.map_err(target_err)?;
    let sql = if rows.len() == full_rows {
        insert_full.to_string()
    } else {
        t.insert_sql(rows.len())
    };
    let q = sqlx::query::<sqlx::Postgres>(AssertSqlSafe(sql));
    let q = bind_values!(q, rows.iter().flatten());
    q.execute(&mut *tx)
        .await
        .map_err(|e| CopyError::Target(format!("inserting into {}: {e}", t.name)))?;
    save_progress(&mut tx, &t.name, last, rows_after, false).await?;
    tx.commit().await.map_err(target_err)?;
    Ok(())
}

// ---- the run ----

/// Copies the SQLite database at `source` (a file, or a data directory
/// holding `hearth.db`) into the Postgres database at `target_url`: see the
/// module's documentation.
pub async fn migrate_data(
    source: &Path,
    target_url: &str,
    opts: &CopyOptions,
    progress: &mut (dyn FnMut(CopyProgress<'_>) + Send),
) -> Result<CopySummary, CopyError> {
    let started = Instant::now();
    let file = sqlite_file(source);
    let mut src = open_source(&file).await?;
    // The source as recorded in the target: its absolute path.
    let source_name = std::fs::canonicalize(&file)
        .unwrap_or(file.clone())
        .display()
        .to_string();

    let pg_opts = sqlx::postgres::PgConnectOptions::from_str(target_url)
        .map_err(|e| CopyError::Target(format!("bad target URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(pg_opts)
        .await
        .map_err(target_err)?;
    let resumed = match inspect_target(&pool, &source_name).await? {
        TargetState::Empty => false,
        TargetState::Resumable => true,
    };
    crate::sql::PostgresStore::new(pool.clone())
        .migrate()
        .await?;
    tracing::info!(source = %source_name, resumed, "migrating data to Postgres");

    let tables = target_tables(&pool).await?;
    check_source_schema(&mut src, &tables).await?;
    if !resumed {
        // The table and the row naming the source, together.
        let mut tx = pool.begin().await.map_err(target_err)?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE {PROGRESS_TABLE} (table_name TEXT PRIMARY KEY, last_key BYTEA, \
             rows BIGINT NOT NULL, done BOOLEAN NOT NULL, source TEXT NOT NULL, updated_at BIGINT NOT NULL)"
        )))
        .execute(&mut *tx)
        .await
        .map_err(target_err)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {PROGRESS_TABLE} (table_name, rows, done, source, updated_at) VALUES ('', 0, FALSE, $1, $2)"
        )))
        .bind(&source_name)
        .bind(hearth_types::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(target_err)?;
        tx.commit().await.map_err(target_err)?;
    }

    // One snapshot of the source for the whole run.
    let mut snap = src.begin().await.map_err(source_err)?;
    let mut totals = Vec::with_capacity(tables.len());
    for t in &tables {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {}",
            quote(&t.name)
        )))
        .fetch_one(&mut *snap)
        .await
        .map_err(source_err)?;
        totals.push(u64::try_from(n).unwrap_or(0));
    }
    progress(CopyProgress::Start {
        resumed,
        total_rows: totals.iter().sum(),
    });

    let mut batches = 0u64;
    let mut copied = 0u64;
    for (t, total) in tables.iter().zip(&totals) {
        let mut state = progress_of(&pool, &t.name).await?;
        if state.done {
            progress(CopyProgress::Table {
                table: &t.name,
                done: state.rows,
                total: *total,
            });
            continue;
        }
        let limit = t.batch_rows(opts.batch_rows);
        let insert_full = t.insert_sql(limit);
        // Reading the next page from SQLite overlaps writing this one to
        // Postgres (the key to read after is known before the write).
        let mut rows = sqlite_page(&mut snap, t, state.last_key.as_deref(), limit).await?;
        while !rows.is_empty() {
            let last = rows.last().map(|r| t.key_of(r));
            let after = state.rows + rows.len() as u64;
            let (next, written) = tokio::join!(
                sqlite_page(&mut snap, t, last.as_deref(), limit),
                write_batch(&pool, t, &rows, &insert_full, limit, last.as_deref(), after)
            );
            written?;
            state.rows = after;
            state.last_key = last;
            copied += rows.len() as u64;
            batches += 1;
            progress(CopyProgress::Table {
                table: &t.name,
                done: state.rows,
                total: *total,
            });
            if opts.fail_after_batches.is_some_and(|n| batches >= n) {
                return Err(CopyError::Injected(batches));
            }
            rows = next?;
        }
        let mut tx = pool.begin().await.map_err(target_err)?;
        save_progress(
            &mut tx,
            &t.name,
            state.last_key.as_deref(),
            state.rows,
            true,
        )
        .await?;
        tx.commit().await.map_err(target_err)?;
        tracing::info!(table = %t.name, rows = state.rows, "table copied");
    }
    let sequences_fixed = fix_sequences(&pool, &tables).await?;
    let copy_elapsed = started.elapsed();

    // Verify: the same canonical checksum on both sides.
    let mut summary = Vec::with_capacity(tables.len());
    let mut problems = Vec::new();
    for t in &tables {
        progress(CopyProgress::Verifying { table: &t.name });
        let (here, there) = tokio::join!(sqlite_checksum(&mut snap, t), pg_checksum(&pool, t));
        let (here, there) = (here?, there?);
        if here != there {
            problems.push(format!(
                "{}: source {} rows ({}), target {} rows ({})",
                t.name,
                here.rows,
                here.hex(),
                there.rows,
                there.hex()
            ));
        }
        summary.push(TableSummary {
            table: t.name.clone(),
            rows: here.rows,
            checksum: here.hex(),
        });
    }
    snap.rollback().await.map_err(source_err)?;
    if !problems.is_empty() {
        return Err(CopyError::Verify(problems.join("; ")));
    }
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {PROGRESS_TABLE}")))
        .execute(&pool)
        .await
        .map_err(target_err)?;
    pool.close().await;
    Ok(CopySummary {
        tables: summary,
        copied_rows: copied,
        resumed,
        copy_elapsed,
        elapsed: started.elapsed(),
        sequences_fixed,
    })
}

async fn sqlite_checksum(conn: &mut SqliteConnection, t: &Table) -> Result<Checksum, CopyError> {
    let limit = t.batch_rows(5000);
    let (mut sum, mut buf, mut after) = (Checksum::default(), Vec::new(), None::<Vec<Value>>);
    loop {
        let rows = sqlite_page(conn, t, after.as_deref(), limit).await?;
        for r in &rows {
            sum.add(r, &mut buf);
        }
        match rows.last() {
            Some(r) => after = Some(t.key_of(r)),
            None => return Ok(sum),
        }
    }
}

async fn pg_checksum(pool: &PgPool, t: &Table) -> Result<Checksum, CopyError> {
    let limit = t.batch_rows(5000);
    let (mut sum, mut buf, mut after) = (Checksum::default(), Vec::new(), None::<Vec<Value>>);
    loop {
        let rows = pg_page(pool, t, after.as_deref(), limit).await?;
        for r in &rows {
            sum.add(r, &mut buf);
        }
        match rows.last() {
            Some(r) => after = Some(t.key_of(r)),
            None => return Ok(sum),
        }
    }
}

/// Row counts and checksums of every copied table, computed as
/// [`migrate_data`] verifies: of the Postgres database at `target_url`, and
/// (with `source`) of that SQLite database instead, read with the target's
/// schema. For tests, and for checking a target later.
pub async fn checksums(
    target_url: &str,
    source: Option<&Path>,
) -> Result<Vec<TableSummary>, CopyError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(target_url)
        .await
        .map_err(target_err)?;
    let tables = target_tables(&pool).await?;
    let mut src = match source {
        Some(p) => Some(open_source(&sqlite_file(p)).await?),
        None => None,
    };
    let mut out = Vec::new();
    for t in &tables {
        let sum = match &mut src {
            Some(conn) => sqlite_checksum(conn, t).await?,
            None => pg_checksum(&pool, t).await?,
        };
        out.push(TableSummary {
            table: t.name.clone(),
            rows: sum.rows,
            checksum: sum.hex(),
        });
    }
    pool.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_encoding() {
        let key = vec![
            Value::Int(Some(-5)),
            Value::Text(Some("k\u{e9}y".into())),
            Value::Bool(Some(true)),
            Value::Bytes(Some(vec![0, 1, 255])),
            Value::Float(Some(1.5)),
        ];
        let mut b = Vec::new();
        encode_row(&key, &mut b);
        assert_eq!(decode_key(&b), Some(key));
        assert_eq!(decode_key(&b[..b.len() - 1]), None, "truncated is refused");
    }

    #[test]
    fn checksums_ignore_row_order_but_not_content() {
        let rows = [
            vec![Value::Int(Some(1)), Value::Text(None)],
            vec![Value::Int(Some(2)), Value::Text(Some(String::new()))],
        ];
        let mut buf = Vec::new();
        let (mut a, mut b, mut c) = (
            Checksum::default(),
            Checksum::default(),
            Checksum::default(),
        );
        a.add(&rows[0], &mut buf);
        a.add(&rows[1], &mut buf);
        b.add(&rows[1], &mut buf);
        b.add(&rows[0], &mut buf);
        c.add(&rows[0], &mut buf);
        c.add(&[Value::Int(Some(2)), Value::Text(None)], &mut buf);
        assert_eq!(a, b);
        assert_ne!(a, c, "NULL and the empty string differ");
    }

    #[test]
    fn page_queries_use_the_whole_key() {
        let t = Table {
            name: "members".into(),
            columns: vec![
                ("community_id".into(), Kind::Int8),
                ("user_id".into(), Kind::Int8),
                ("nickname".into(), Kind::Text),
            ],
            key: vec![0, 1],
        };
        assert_eq!(
            t.page_sql(true),
            "SELECT \"community_id\", \"user_id\", \"nickname\" FROM \"members\" \
             WHERE (\"community_id\", \"user_id\") > ($1, $2) ORDER BY \"community_id\", \"user_id\" LIMIT $3"
        );
        assert!(t.page_sql(false).ends_with("LIMIT $1"));
        assert_eq!(t.batch_rows(1_000_000), 20_000);
    }
}
