use hearth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// A field failed validation: `(field, reason)`.
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error("that {0} is already taken")]
    Taken(&'static str),
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("a one-time code is required")]
    MfaRequired,
    /// A spent refresh token came back: the whole session is now revoked,
    /// and the caller announces it so its sockets close on every node.
    #[error("the refresh token was already used; the session is revoked")]
    TokenReused {
        session: hearth_types::SessionId,
        user: Option<hearth_types::UserId>,
    },
    /// Missing, malformed, expired or revoked token.
    #[error("not authenticated")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    /// The account is suspended by the instance's staff: no sign-in.
    #[error("this account is suspended")]
    Suspended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}
