use hearth_rbac::Permissions;
use hearth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Missing, or not visible to the actor.
    #[error("not found")]
    NotFound,
    /// Visible but not allowed; carries the permission that is missing.
    #[error("missing permission")]
    Forbidden(Permissions),
    /// Visible, allowed by permission, but refused by a rule (role hierarchy,
    /// owner protections, bans): the reason is for humans.
    #[error("{0}")]
    Refused(&'static str),
    /// A field failed validation: `(field, reason)`.
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error("{0}")]
    Conflict(&'static str),
    /// A per-user quota is used up (e.g. group DMs per day); try again after
    /// `retry_after_ms`.
    #[error("{what}")]
    Limited {
        what: &'static str,
        retry_after_ms: u64,
    },
    #[error(transparent)]
    Store(StoreError),
    /// A shared service this needs (e.g. cross-node ordering) did not answer
    /// in time; the string names it. Nothing was stored: retry.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    /// A community's automod rule refused a message: the rule is named so
    /// the sender knows why. Nothing was stored.
    #[error("blocked by the rule \"{rule_name}\"")]
    Blocked { rule_id: i64, rule_name: String },
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            // Something referenced was deleted concurrently: from the caller's
            // side it is simply not there.
            StoreError::Missing(_) => ChatError::NotFound,
            other => ChatError::Store(other),
        }
    }
}

pub type ChatResult<T> = Result<T, ChatError>;
