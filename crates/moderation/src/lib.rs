//! Moderation and platform administration, as pure domain pieces.
//!
//! - [`automod`]: per-community rules compiled once into a [`RuleSet`]
//!   (every keyword of a community in one Aho-Corasick automaton, every
//!   regex in one size-limited `RegexSet`) and checked on the send path in
//!   one pass over the normalized text; a [`FloodTracker`] remembers recent
//!   messages per (community, author) in bounded memory.
//! - [`staff`]: platform staff roles decided by casbin (RBAC model), loaded
//!   from a [`PolicyStore`], answers cached until the policy changes; edits
//!   validated, the last administrator kept.
//! - [`audit`]: the audit-log entry model ([`AuditEntry`], [`AuditAction`]
//!   with stable names, before/after [`Change`]s), its filter and the store
//!   seam the durable consumer writes through.
//! - [`reports`]: member and instance reports as a state machine (open, then
//!   actioned or dismissed), with notes and the reported content kept as
//!   evidence.
//!
//! **Knows nothing of HTTP, SQL or sockets.** Storage is behind the traits
//! [`PolicyStore`] and [`AuditStore`], which the server implements over
//! `hearth-store`; memory implementations are here for tests.

pub mod audit;
pub mod automod;
mod error;
mod ids;
pub mod reports;
pub mod staff;

pub use audit::{
    AuditAction, AuditEntry, AuditFilter, AuditStore, Change, MemoryAuditStore, TargetKind,
};
pub use automod::{FloodTracker, MessageContext, RuleSet, RuleSpec, Verdict};
pub use error::{ModerationError, RuleRef, StoreError};
pub use ids::{AuditEntryId, AutomodRuleId, ReportId};
pub use reports::{Note, Report, ReportScope, ReportState, ReportSubject};
pub use staff::{
    Actor, AdminOp, MemoryPolicyStore, PolicyRule, PolicyStore, StaffAction, StaffObject,
    StaffPolicy, StaffRole,
};
