//! Invites: create, preview, join, list, delete.

use hearth_rbac::Permissions;
use hearth_store::{CommunityRecord, InviteRecord, InviteUse};
use hearth_types::{CommunityId, UserId, now_ms};
use rand::Rng;

use hearth_moderation::{AuditAction, TargetKind};

use crate::audit::{AuditDraft, AuditRecord};
use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::{Chat, require};

const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
const MAX_AGE_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Clone, Debug)]
pub struct InvitePreview {
    pub invite: InviteRecord,
    pub community: CommunityRecord,
    pub member_count: usize,
}

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..10)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

fn plausible_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Chat {
    /// `max_uses` 1..=1000 (none: unlimited); `max_age_seconds` 60..=30 days (none or 0: never expires).
    pub async fn create_invite(
        &self,
        c: CommunityId,
        actor: UserId,
        max_uses: Option<i64>,
        max_age_seconds: Option<i64>,
    ) -> ChatResult<InviteRecord> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::CREATE_INVITE)?;
        let max_uses = match max_uses {
            None | Some(0) => None,
            Some(n @ 1..=1000) => Some(n as i32),
            Some(_) => {
                return Err(ChatError::Invalid(
                    "max_uses",
                    "0-1000 (0: unlimited)".into(),
                ));
            }
        };
        let now = now_ms();
        let expires_at = match max_age_seconds {
            None | Some(0) => None,
            Some(s @ 60..=MAX_AGE_SECONDS) => Some(now + s * 1000),
            Some(_) => {
                return Err(ChatError::Invalid(
                    "max_age_seconds",
                    "0 (never) or 60-2592000".into(),
                ));
            }
        };
        let invite = InviteRecord {
            code: new_code(),
            community_id: c,
            inviter_id: actor,
            uses: 0,
            max_uses,
            expires_at,
            created_at: now,
        };
        self.store.create_invite(&invite).await?;
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::InviteCreate,
                TargetKind::Invite,
                None,
            )
            .after(AuditRecord::Invite(invite.clone())),
        );
        Ok(invite)
    }

    /// What a link shows before joining. Dead invites are not found.
    pub async fn invite_preview(&self, code: &str) -> ChatResult<InvitePreview> {
        if !plausible_code(code) {
            return Err(ChatError::NotFound);
        }
        let invite = self.store.invite(code).await?.ok_or(ChatError::NotFound)?;
        let live = invite.expires_at.is_none_or(|t| t > now_ms())
            && invite.max_uses.is_none_or(|m| invite.uses < m);
        if !live {
            return Err(ChatError::NotFound);
        }
        let community = self
            .store
            .community(invite.community_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let member_count = self.store.member_ids(community.id).await?.len();
        Ok(InvitePreview {
            invite,
            community,
            member_count,
        })
    }

    /// Joins through an invite. Banned users are refused; members just get
    /// the community back without using up the invite.
    pub async fn join(&self, code: &str, user: UserId) -> ChatResult<CommunityRecord> {
        // Already a member: the link just leads home, even if it has since run out.
        if plausible_code(code)
            && let Some(inv) = self.store.invite(code).await?
            && self.store.member(inv.community_id, user).await?.is_some()
        {
            return self
                .store
                .community(inv.community_id)
                .await?
                .ok_or(ChatError::NotFound);
        }
        let preview = self.invite_preview(code).await?;
        let c = preview.community.id;
        if self.store.is_banned(c, user).await? {
            return Err(ChatError::Refused("you are banned from this community"));
        }
        if let InviteUse::Invalid = self.store.use_invite(code, now_ms()).await? {
            return Err(ChatError::NotFound);
        }
        if self.store.add_member(c, user, now_ms()).await? {
            self.permissions_changed(c);
            if let Some(m) = self.store.member(c, user).await? {
                self.emit(ChatEvent::MemberAdd(m));
            }
            self.emit(ChatEvent::CommunityCreate {
                community: preview.community.clone(),
                user_id: user,
            });
        }
        Ok(preview.community)
    }

    pub async fn invites(&self, c: CommunityId, actor: UserId) -> ChatResult<Vec<InviteRecord>> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::MANAGE_COMMUNITY)?;
        Ok(self.store.invites(c).await?)
    }

    /// The inviter, or anyone with MANAGE_COMMUNITY, may revoke an invite.
    pub async fn delete_invite(&self, code: &str, actor: UserId) -> ChatResult<()> {
        if !plausible_code(code) {
            return Err(ChatError::NotFound);
        }
        let invite = self.store.invite(code).await?.ok_or(ChatError::NotFound)?;
        let p = self
            .community_permissions(invite.community_id, actor)
            .await?;
        if invite.inviter_id != actor {
            require(p, Permissions::MANAGE_COMMUNITY)?;
        }
        if self.store.delete_invite(code).await? {
            self.audit(
                AuditDraft::new(
                    invite.community_id,
                    actor,
                    AuditAction::InviteDelete,
                    TargetKind::Invite,
                    None,
                )
                .before(AuditRecord::Invite(invite)),
            );
        }
        Ok(())
    }
}
