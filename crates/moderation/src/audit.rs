//! The audit log's entries: who did what to whom, why, and what changed.
//!
//! Entries are written by a durable consumer from the events on the bus,
//! with the event's ID as the entry's ID, so a redelivered event is recorded
//! once ([`AuditStore::record`] is insert-if-absent). Action and target
//! names are stable strings (stored in databases and shown in the API):
//! add new ones, never rename.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use hearth_types::{CommunityId, UserId};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{AuditEntryId, ModerationError, StoreError};

macro_rules! stable_names {
    ($(#[$doc:meta])* $ty:ident, $err:ident { $($(#[$vdoc:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty { $($(#[$vdoc])* $v),* }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s),* }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $ty {
            type Err = ModerationError;
            fn from_str(s: &str) -> Result<Self, ModerationError> {
                match s {
                    $($s => Ok($ty::$v),)*
                    _ => Err(ModerationError::$err(s.to_owned())),
                }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

stable_names!(
    /// What an audit entry records.
    AuditAction, UnknownAuditAction {
        RoleCreate = "role_create",
        RoleUpdate = "role_update",
        RoleDelete = "role_delete",
        MemberRoleAdd = "member_role_add",
        MemberRoleRemove = "member_role_remove",
        OverwritePut = "overwrite_put",
        OverwriteDelete = "overwrite_delete",
        ChannelCreate = "channel_create",
        ChannelUpdate = "channel_update",
        ChannelDelete = "channel_delete",
        CommunityUpdate = "community_update",
        MemberKick = "member_kick",
        MemberBan = "member_ban",
        MemberUnban = "member_unban",
        MemberTimeout = "member_timeout",
        MemberTimeoutClear = "member_timeout_clear",
        /// A message deleted by a moderator (not by its author).
        MessageDelete = "message_delete",
        MessageBulkDelete = "message_bulk_delete",
        MessagePin = "message_pin",
        MessageUnpin = "message_unpin",
        InviteCreate = "invite_create",
        InviteDelete = "invite_delete",
        AutomodRuleCreate = "automod_rule_create",
        AutomodRuleUpdate = "automod_rule_update",
        AutomodRuleDelete = "automod_rule_delete",
        AutomodBlock = "automod_block",
        AutomodFlag = "automod_flag",
        AutomodTimeout = "automod_timeout",
        AutomodDelete = "automod_delete",
        ReportActioned = "report_actioned",
        ReportDismissed = "report_dismissed",
        AdminUsersSearch = "admin_users_search",
        AdminUserSuspend = "admin_user_suspend",
        AdminUserUnsuspend = "admin_user_unsuspend",
        AdminUserResetMfa = "admin_user_reset_mfa",
        AdminUserErase = "admin_user_erase",
        AdminCommunitiesList = "admin_communities_list",
        AdminCommunityTakedown = "admin_community_takedown",
        AdminReportsList = "admin_reports_list",
        AdminReportAction = "admin_report_action",
        AdminReportDismiss = "admin_report_dismiss",
        AdminStatsRead = "admin_stats_read",
        AdminPolicyRead = "admin_policy_read",
        AdminPolicyEdit = "admin_policy_edit",
        AdminAuditRead = "admin_audit_read",
    }
);

impl AuditAction {
    /// Instance-level (platform staff) actions, as opposed to a community's.
    pub fn is_admin(self) -> bool {
        self.as_str().starts_with("admin_")
    }
}

stable_names!(
    /// What kind of thing an entry's target is.
    TargetKind, UnknownTargetKind {
        User = "user",
        Community = "community",
        Channel = "channel",
        Role = "role",
        Message = "message",
        Invite = "invite",
        AutomodRule = "automod_rule",
        Report = "report",
        StaffPolicy = "staff_policy",
        Instance = "instance",
    }
);

/// One changed field: its value before and after (`None`: absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// One audit-log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The ID of the event it was written from.
    pub id: AuditEntryId,
    /// `None` for instance-level (admin) entries.
    pub community_id: Option<CommunityId>,
    /// Who acted; `None` for the system (automod acts as its rule, named in `reason`).
    pub actor_id: Option<UserId>,
    pub action: AuditAction,
    pub target_kind: TargetKind,
    /// The target's ID (a user, channel, role, message…), if it has one.
    pub target_id: Option<i64>,
    pub reason: Option<String>,
    pub changes: Vec<Change>,
    /// Unix ms.
    pub created_at: i64,
}

/// Longest reason kept; longer ones are cut (on a character boundary).
pub const MAX_REASON_CHARS: usize = 512;

impl AuditEntry {
    /// Cuts the reason to [`MAX_REASON_CHARS`] and drops an empty one.
    pub fn with_reason(mut self, reason: Option<&str>) -> AuditEntry {
        self.reason = reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(MAX_REASON_CHARS).collect());
        self
    }
}

/// The fields that differ between two JSON objects (top-level keys, sorted).
/// `Null` on either side stands for "did not exist" (a create or a delete);
/// a value that is not an object is compared whole, under the key `value`.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let empty = serde_json::Map::new();
    let as_object = |v: &Value| -> Option<serde_json::Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m.clone()),
            Value::Null => Some(empty.clone()),
            _ => None,
        }
    };
    let (Some(b), Some(a)) = (as_object(before), as_object(after)) else {
        if before == after {
            return Vec::new();
        }
        let some = |v: &Value| (!v.is_null()).then(|| v.clone());
        return vec![Change {
            key: "value".into(),
            before: some(before),
            after: some(after),
        }];
    };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (b.get(k), a.get(k));
            (x != y).then(|| Change {
                key: k.clone(),
                before: x.cloned(),
                after: y.cloned(),
            })
        })
        .collect()
}

/// Which entries to list, newest first. Every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// A community's log, or the instance's (`None`: admin entries).
    pub community_id: Option<CommunityId>,
    pub actor_id: Option<UserId>,
    pub action: Option<AuditAction>,
    pub target_id: Option<i64>,
    /// Only entries with a smaller ID (older): the next page.
    pub before: Option<AuditEntryId>,
    /// Only entries with a larger ID (newer).
    pub after: Option<AuditEntryId>,
}

impl AuditFilter {
    /// The filter's meaning, for memory stores and tests (the database does
    /// the same in SQL).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        e.community_id == self.community_id
            && self.actor_id.is_none_or(|a| e.actor_id == Some(a))
            && self.action.is_none_or(|a| e.action == a)
            && self.target_id.is_none_or(|t| e.target_id == Some(t))
            && self.before.is_none_or(|b| e.id < b)
            && self.after.is_none_or(|a| e.id > a)
    }
}

/// Page size limit for [`AuditStore::list`].
pub const MAX_PAGE: usize = 100;

/// Where audit entries are kept (the server: a table in the database).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores `entry` unless an entry with its ID exists; true if stored.
    async fn record(&self, entry: &AuditEntry) -> Result<bool, StoreError>;
    /// Stores each of `entries` unless one with its ID exists, all or none
    /// (one transaction where the store has them); how many were new.
    async fn record_many(&self, entries: &[AuditEntry]) -> Result<u64, StoreError> {
        let mut n = 0;
        for e in entries {
            n += u64::from(self.record(e).await?);
        }
        Ok(n)
    }
    /// At most `limit` entries matching `filter`, newest (largest ID) first.
    async fn list(&self, filter: &AuditFilter, limit: usize)
    -> Result<Vec<AuditEntry>, StoreError>;
}

/// An [`AuditStore`] in memory, for tests.
#[derive(Default)]
pub struct MemoryAuditStore {
    entries: Mutex<Vec<AuditEntry>>,
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn record(&self, entry: &AuditEntry) -> Result<bool, StoreError> {
        let mut entries = self.entries.lock();
        if entries.iter().any(|e| e.id == entry.id) {
            return Ok(false);
        }
        entries.push(entry.clone());
        Ok(true)
    }

    async fn list(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let entries = self.entries.lock();
        let mut out: Vec<AuditEntry> = entries
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.id));
        out.truncate(limit.min(MAX_PAGE));
        Ok(out)
    }
}
