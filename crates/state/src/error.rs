//! One error type for the whole seam. The memory implementations never fail;
//! the Redis ones fail when the server is unreachable or answers oddly, and
//! callers decide whether that fails open or closed.

/// Why a shared-state call failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("unexpected reply from the state backend: {0}")]
    Protocol(String),
}

pub type StateResult<T> = Result<T, StateError>;
