//! Audit announcements: who changed what, why, and the record before and
//! after. Each configuration or moderation change announces one
//! [`ChatEvent::Audit`](crate::ChatEvent::Audit) after it is stored, beside
//! its ordinary event; the server turns it into an audit-log entry.
//!
//! The reason comes from the operation itself where it has one (a ban's),
//! else from [`current_reason`]: a task-local the caller sets around the
//! operation with [`with_reason`] (the server sets it from a request
//! header). This crate never sees where it came from.

use std::future::Future;

use hearth_moderation::{AuditAction, TargetKind};
use hearth_store::{ChannelRecord, CommunityRecord, InviteRecord, OverwriteRecord, RoleRecord};
use hearth_types::{ChannelId, CommunityId, RoleId, UserId};

/// Longest reason kept (characters); longer ones are cut.
pub const MAX_REASON_CHARS: usize = hearth_moderation::audit::MAX_REASON_CHARS;

tokio::task_local! {
    static REASON: Option<String>;
}

/// Runs `fut` with `reason` as the audit reason of every change it makes.
pub async fn with_reason<F: Future>(reason: Option<String>, fut: F) -> F::Output {
    REASON.scope(clean(reason.as_deref()), fut).await
}

/// The reason set by [`with_reason`] around the current task, if any.
pub fn current_reason() -> Option<String> {
    REASON.try_with(Clone::clone).ok().flatten()
}

/// Trimmed, cut to [`MAX_REASON_CHARS`]; an empty one is none.
pub fn clean(reason: Option<&str>) -> Option<String> {
    reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect())
}

/// A record as it was before or is after an audited change.
#[derive(Clone, Debug)]
pub enum AuditRecord {
    Role(RoleRecord),
    Channel(ChannelRecord),
    Community(CommunityRecord),
    Overwrite(OverwriteRecord),
    Invite(InviteRecord),
    /// A member's roles (other than `@everyone`).
    MemberRoles(Vec<RoleId>),
    /// A member's timeout (Unix ms), or none.
    Timeout(Option<i64>),
    /// A deleted message: its author and channel (never its content).
    Message {
        author_id: UserId,
        channel_id: ChannelId,
    },
    /// Messages deleted together.
    Messages {
        channel_id: ChannelId,
        count: usize,
    },
}

/// One audited change, announced after it is stored.
#[derive(Clone, Debug)]
pub struct AuditDraft {
    pub community_id: CommunityId,
    pub actor: UserId,
    pub action: AuditAction,
    pub target_kind: TargetKind,
    pub target_id: Option<i64>,
    pub reason: Option<String>,
    pub before: Option<AuditRecord>,
    pub after: Option<AuditRecord>,
    /// Unix ms.
    pub at_ms: i64,
}

impl AuditDraft {
    /// A draft with the current task's reason and no records.
    pub fn new(
        community_id: CommunityId,
        actor: UserId,
        action: AuditAction,
        target_kind: TargetKind,
        target_id: Option<i64>,
    ) -> AuditDraft {
        AuditDraft {
            community_id,
            actor,
            action,
            target_kind,
            target_id,
            reason: current_reason(),
            before: None,
            after: None,
            at_ms: hearth_types::now_ms(),
        }
    }

    pub fn before(mut self, r: AuditRecord) -> AuditDraft {
        self.before = Some(r);
        self
    }

    pub fn after(mut self, r: AuditRecord) -> AuditDraft {
        self.after = Some(r);
        self
    }

    /// An explicit reason (the operation's own) wins over the task's.
    pub fn reason(mut self, r: Option<&str>) -> AuditDraft {
        if let Some(r) = clean(r) {
            self.reason = Some(r);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reason_is_scoped_to_the_future() {
        assert_eq!(current_reason(), None);
        let inside = with_reason(Some("  spam  ".into()), async { current_reason() }).await;
        assert_eq!(inside.as_deref(), Some("spam"));
        assert_eq!(current_reason(), None);
        let long = "é".repeat(600);
        let cut = with_reason(Some(long), async { current_reason() }).await;
        assert_eq!(cut.map(|r| r.chars().count()), Some(MAX_REASON_CHARS));
        assert_eq!(
            with_reason(Some("  ".into()), async { current_reason() }).await,
            None
        );
    }
}
