//! Throwaway Postgres databases for tests (ours and other crates'): each test
//! gets a fresh, uniquely named database, migrated on first connect, dropped
//! at the end. Names are checked so nothing but `[a-z0-9_]` reaches the SQL.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::{StoreError, StoreResult};

/// The server tests create databases on: `HEARTH_TEST_DATABASE_URL`, or the local one.
pub fn admin_url() -> String {
    std::env::var("HEARTH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn check(name: &str) -> StoreResult<()> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Other(format!("bad database name {name:?}")));
    }
    Ok(())
}

/// Creates database `name` and returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> StoreResult<String> {
    check(name)?;
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

pub async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
    check(name)?;
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    Ok(())
}
