//! Platform administration in the server: the staff policy (casbin, in
//! `hearth-moderation`'s `staff`) kept in the database, the checks every
//! admin call makes, suspending accounts, and the audit of it all.
//!
//! Who is staff: users the policy gives a role, and the accounts made with
//! `hearth admin create-user --admin` (the `is_admin` flag), which hold the
//! built-in `admin` role without a policy row (so an instance always has
//! someone who can edit the policy, whatever it says).
//!
//! Every node holds the policy in memory; an edit on one node nudges the
//! others (`internal.staff`) to reload it, so a change applies on every
//! node within a round trip of the bus.

use std::sync::Arc;

use async_trait::async_trait;
use hearth_moderation::staff::{AdminOp, PolicyRule, PolicyStore, StaffPolicy};
use hearth_moderation::{AuditEntry, AuditEntryId, ModerationError, StoreError, TargetKind};
use hearth_store::{Store, SuspensionRecord};
use hearth_types::{CommunityId, SessionId, UserId, now_ms};
use serde_json::json;

use crate::state::AppState;

/// The bus subject that tells every node to reload the staff policy.
pub const NUDGE: &str = "internal.staff";

/// How often a node reads the stored policy regardless of nudges.
const POLL: std::time::Duration = std::time::Duration::from_secs(3);

/// [`PolicyStore`] over the database's `staff_policy` (one JSON rule a row).
pub struct StorePolicy(pub Arc<dyn Store>);

fn text(rule: &PolicyRule) -> Result<String, StoreError> {
    serde_json::to_string(rule).map_err(StoreError::new)
}

#[async_trait]
impl PolicyStore for StorePolicy {
    async fn load(&self) -> Result<Vec<PolicyRule>, StoreError> {
        let rows = self.0.staff_rules().await.map_err(StoreError::new)?;
        // A row this binary cannot read (written by a newer one) is skipped:
        // the policy can only lose permissions by it, never gain them.
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    async fn add(&self, rule: &PolicyRule) -> Result<bool, StoreError> {
        self.0
            .add_staff_rule(&text(rule)?, now_ms())
            .await
            .map_err(StoreError::new)
    }

    async fn remove(&self, rule: &PolicyRule) -> Result<bool, StoreError> {
        self.0
            .remove_staff_rule(&text(rule)?)
            .await
            .map_err(StoreError::new)
    }
}

/// The instance's staff policy and what admin calls share.
pub struct Admin {
    pub policy: StaffPolicy,
}

impl Admin {
    pub async fn open(store: Arc<dyn Store>) -> Result<Admin, ModerationError> {
        Ok(Admin {
            policy: StaffPolicy::open(Arc::new(StorePolicy(store))).await?,
        })
    }
}

/// Why an admin call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Policy(#[from] ModerationError),
    #[error(transparent)]
    Accounts(#[from] hearth_accounts::AccountsError),
    #[error(transparent)]
    Store(#[from] hearth_store::StoreError),
    #[error(transparent)]
    Chat(#[from] hearth_chat::ChatError),
    /// No such account (or it was erased already).
    #[error("not found")]
    NotFound,
    /// An account that owns communities is not erased: their members would
    /// be left without an owner. Transfer or take them down first.
    #[error("the account owns communities")]
    OwnsCommunities(Vec<(CommunityId, String)>),
}

/// What becomes of an erased account's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasedMessages {
    /// Kept, shown as from a deleted user.
    Keep,
    /// Deleted everywhere (communities and DMs), announced as deletions.
    Remove,
}

impl ErasedMessages {
    pub fn as_str(self) -> &'static str {
        match self {
            ErasedMessages::Keep => "keep",
            ErasedMessages::Remove => "remove",
        }
    }

    pub fn parse(s: &str) -> Option<ErasedMessages> {
        match s {
            "keep" => Some(ErasedMessages::Keep),
            "remove" => Some(ErasedMessages::Remove),
            _ => None,
        }
    }
}

/// The username an erased account keeps (its id is all that is left).
/// Usernames cannot hold a `-`, so nobody can sign up as one.
pub fn tombstone(user: UserId) -> String {
    format!("deleted-{user}")
}

/// What an erasure did.
#[derive(Clone, Debug, Default)]
pub struct Erased {
    pub messages_deleted: usize,
    pub communities_left: usize,
}

/// Erases `user`'s account: every session revoked (sockets closed on every
/// node), its messages deleted if `messages` says so, its communities left,
/// its staff roles taken, and then its personal data removed for good (see
/// `Store::erase_user`). An owner of communities is refused before anything
/// changes.
pub async fn erase(
    state: &AppState,
    user: UserId,
    by: Option<UserId>,
    messages: ErasedMessages,
) -> Result<Erased, AdminError> {
    let u = state.store.user(user).await?.ok_or(AdminError::NotFound)?;
    if state.store.erasure(user).await?.is_some() {
        return Err(AdminError::NotFound);
    }
    let communities = state.store.communities_for_user(user).await?;
    let owned: Vec<(CommunityId, String)> = communities
        .iter()
        .filter(|c| c.owner_id == user)
        .map(|c| (c.id, c.name.clone()))
        .collect();
    if !owned.is_empty() {
        return Err(AdminError::OwnsCommunities(owned));
    }
    for sid in state.accounts.revoke_all(user).await? {
        announce_revoked(state, user, sid);
    }
    let mut out = Erased::default();
    if messages == ErasedMessages::Remove {
        out.messages_deleted = state.chat.delete_all_by(user).await?;
    }
    for c in &communities {
        state.chat.remove_member_for_erasure(c.id, user).await?;
        out.communities_left += 1;
    }
    for role in state.admin.policy.roles_of(user) {
        // The last admin is refused here as anywhere: they keep the role
        // row, which now names an account that can never sign in.
        if let Err(e) = state
            .admin
            .policy
            .revoke(hearth_moderation::staff::Actor::Operator, user, &role)
            .await
        {
            tracing::warn!(error = %e, %role, "taking a staff role from an erased account");
        }
    }
    announce_policy(state);
    let erased = state
        .store
        .erase_user(
            &hearth_store::ErasureRecord {
                user_id: user,
                erased_by: by,
                messages: messages.as_str().to_string(),
                erased_at: now_ms(),
            },
            &tombstone(user),
        )
        .await?;
    if !erased {
        // Another erasure of the same account won the race.
        return Err(AdminError::NotFound);
    }
    if let Some(avatar) = u.avatar_id
        && let Err(e) = crate::media::delete_attachment(state, avatar).await
    {
        tracing::warn!(error = %e, "deleting an erased account's avatar");
    }
    state.chat.user_changed(user);
    if let Ok(after) = state.accounts.user(user).await {
        let view: crate::http::wire::User = (&after).into();
        state.publisher.publish(
            "USER_UPDATE",
            format!("chat.user.{user}"),
            serde_json::to_value(&view).unwrap_or_default(),
        );
    }
    Ok(out)
}

/// Takes a community down: deleted with everything in it, whoever owns it.
pub async fn take_down(
    state: &AppState,
    community: CommunityId,
) -> Result<hearth_store::CommunityRecord, AdminError> {
    match state.chat.take_down(community).await {
        Ok(c) => Ok(c),
        Err(hearth_chat::ChatError::NotFound) => Err(AdminError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Whether `user` may do `op`: the `is_admin` flag, or the policy.
pub async fn require(state: &AppState, user: UserId, op: AdminOp) -> Result<(), AdminError> {
    match state.admin.policy.require(user, op) {
        Ok(()) => Ok(()),
        Err(refused) => {
            if state.accounts.user(user).await?.is_admin {
                Ok(())
            } else {
                Err(refused.into())
            }
        }
    }
}

/// Records an admin action in the instance's audit log (no community).
pub async fn audit(
    state: &AppState,
    actor: Option<UserId>,
    op: AdminOp,
    target: (TargetKind, Option<i64>),
    reason: Option<&str>,
    change: serde_json::Value,
) {
    let changes = hearth_moderation::audit::diff(&json!(null), &change);
    let entry = AuditEntry {
        id: AuditEntryId(state.publisher.next_id()),
        community_id: None,
        actor_id: actor,
        action: op.audit_action(),
        target_kind: target.0,
        target_id: target.1,
        reason: None,
        changes,
        created_at: now_ms(),
    }
    .with_reason(reason);
    if let Err(e) = state.moderation.audit.record(&entry).await {
        // The action is done; losing its record is logged loudly.
        tracing::error!(error = %e, action = ?op, "could not record an admin action in the audit log");
    }
}

/// Tells every node to reload the staff policy (after an edit here).
pub fn announce_policy(state: &AppState) {
    state
        .publisher
        .publish("STAFF_POLICY_UPDATE", NUDGE.to_string(), json!({}));
}

/// Suspends `user`: no sign-in from now on, and every session revoked (its
/// sockets close with 4010 on every node). False if already suspended.
pub async fn suspend(
    state: &AppState,
    user: UserId,
    by: Option<UserId>,
    reason: Option<String>,
) -> Result<bool, AdminError> {
    state.accounts.user(user).await?;
    let fresh = state
        .store
        .suspend_user(&SuspensionRecord {
            user_id: user,
            reason,
            suspended_by: by,
            suspended_at: now_ms(),
        })
        .await?;
    // Revoked even when already suspended: a session opened in a race with
    // the first suspension goes too.
    for sid in state.accounts.revoke_all(user).await? {
        announce_revoked(state, user, sid);
    }
    Ok(fresh)
}

fn announce_revoked(state: &AppState, user: UserId, sid: SessionId) {
    crate::http::auth::announce_revoked(state, user, sid);
}

/// Reloads the policy when another node edits it.
pub async fn start(state: &AppState) -> Result<(), String> {
    let mut sub = state
        .bus
        .subscribe(NUDGE)
        .await
        .map_err(|e| e.to_string())?;
    // A single node has no bus to other processes: `hearth admin staff`
    // run beside it edits the database only. So every node also looks at
    // the stored policy every few seconds (installing it only if changed).
    let polled = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(state) = polled.upgrade().map(AppState) else {
                return;
            };
            if let Err(e) = state.admin.policy.refresh().await {
                tracing::warn!(error = %e, "reading the staff policy");
            }
        }
    });
    let server = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        while let Some(d) = sub.next().await {
            let Some(state) = server.upgrade().map(AppState) else {
                return;
            };
            if matches!(
                d,
                hearth_bus::Delivery::Event(_) | hearth_bus::Delivery::Lagged(_)
            ) && let Err(e) = state.admin.policy.reload().await
            {
                tracing::error!(error = %e, "reloading the staff policy");
            }
        }
    });
    Ok(())
}
