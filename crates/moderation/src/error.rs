//! The crate's one error type. Each variant has a stable [`code`]; the
//! server maps variants to HTTP statuses in its one table (bad rules and
//! bad edits are 400, a refused staff check is 403, an invalid report
//! transition is 409, a store failure is 500).
//!
//! [`code`]: ModerationError::code

use std::fmt;
use std::sync::Arc;

use hearth_types::UserId;

use crate::AutomodRuleId;
use crate::reports::ReportState;

/// An automod rule named in verdicts and errors: its ID and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RuleRef {
    pub id: AutomodRuleId,
    pub name: Arc<str>,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} \"{}\"", self.id, self.name)
    }
}

/// A failure of a storage implementation (the server's database), carried
/// opaquely: it is logged with its cause chain, never shown.
#[derive(Debug, thiserror::Error)]
#[error("moderation store: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    // ---- automod rules (400) ----
    #[error("a community has at most {max} automod rules, got {count}")]
    TooManyRules { count: usize, max: usize },
    #[error("two automod rules have the ID {0}")]
    DuplicateRuleId(AutomodRuleId),
    #[error("{rule}: {reason}")]
    InvalidRule { rule: RuleRef, reason: String },
    #[error("{rule}: keyword \"{keyword}\" {reason}")]
    InvalidKeyword {
        rule: RuleRef,
        keyword: String,
        reason: &'static str,
    },
    #[error("{rule}: regex \"{pattern}\": {reason}")]
    InvalidRegex {
        rule: RuleRef,
        pattern: String,
        reason: String,
    },
    #[error("{what}: {count} is more than the limit of {max}")]
    LimitExceeded {
        what: String,
        count: usize,
        max: usize,
    },

    // ---- staff policy ----
    /// A staff member (or anyone) without the policy for an action (403).
    #[error("user {user} may not {action} {object}")]
    Forbidden {
        user: UserId,
        object: &'static str,
        action: &'static str,
    },
    #[error("unknown admin object {0:?}")]
    UnknownObject(String),
    #[error("unknown admin action {action:?} on {object:?}")]
    UnknownAction { object: String, action: String },
    #[error("invalid staff role name {0:?} (1-32 of a-z, 0-9 and _)")]
    InvalidRole(String),
    #[error("the admin role's permissions are built in and cannot be changed")]
    BuiltInRole,
    #[error("user {0} is the last admin; grant the role to someone else first")]
    LastAdmin(UserId),

    /// The policy engine refused the built-in model or policy: our bug (500).
    #[error("staff policy engine: {0}")]
    Engine(String),

    // ---- audit ----
    #[error("unknown audit action {0:?}")]
    UnknownAuditAction(String),
    #[error("unknown audit target kind {0:?}")]
    UnknownTargetKind(String),

    // ---- reports ----
    #[error("a report that is {from} cannot become {to}")]
    InvalidTransition { from: ReportState, to: ReportState },
    #[error("invalid report: {0}")]
    InvalidReport(&'static str),

    // ---- storage (500) ----
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ModerationError {
    /// A stable machine-readable code for each variant.
    pub fn code(&self) -> &'static str {
        use ModerationError::*;
        match self {
            TooManyRules { .. } | LimitExceeded { .. } => "automod_limit_exceeded",
            DuplicateRuleId(_) | InvalidRule { .. } => "automod_invalid_rule",
            InvalidKeyword { .. } => "automod_invalid_keyword",
            InvalidRegex { .. } => "automod_invalid_regex",
            Forbidden { .. } => "staff_forbidden",
            UnknownObject(_) | UnknownAction { .. } => "staff_unknown_permission",
            InvalidRole(_) => "staff_invalid_role",
            BuiltInRole => "staff_builtin_role",
            LastAdmin(_) => "staff_last_admin",
            UnknownAuditAction(_) | UnknownTargetKind(_) => "audit_unknown_name",
            InvalidTransition { .. } => "report_invalid_transition",
            InvalidReport(_) => "report_invalid",
            Store(_) | Engine(_) => "internal",
        }
    }
}
