use thiserror::Error;

/// What can go wrong below the repository API. Callers map these once to
/// their own domain errors.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint was hit; the string names the constraint or column.
    #[error("conflict on {0}")]
    Conflict(String),
    /// A row this change refers to is gone (a foreign key found nothing),
    /// e.g. a message sent to a channel deleted a moment ago.
    #[error("missing referenced row: {0}")]
    Missing(String),
    /// The database could not be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed or the schema is newer than this binary.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else; carries the driver's message for the logs only.
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Missing(db.message().to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.constraint().unwrap_or_else(|| db.message()).to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}
