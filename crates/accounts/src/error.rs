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
    /// A mailed token (verification, reset, email change) that cannot be used.
    #[error("{}", .0.reason())]
    Token(TokenProblem),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

/// Why a mailed token was refused. One code each, so a client can tell the
/// user to ask for a new link (expired, used) or to check it (invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// Unknown, for another purpose, or for an address the account no longer has.
    Invalid,
    Expired,
    /// Used already: every token works once.
    Used,
}

impl TokenProblem {
    pub fn code(self) -> &'static str {
        match self {
            TokenProblem::Invalid => "token_invalid",
            TokenProblem::Expired => "token_expired",
            TokenProblem::Used => "token_used",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            TokenProblem::Invalid => "this link is not valid",
            TokenProblem::Expired => "this link has expired; ask for a new one",
            TokenProblem::Used => "this link was used already; ask for a new one",
        }
    }
}
