//! Members: list, leave, kick, ban, timeouts, nicknames, role assignment.

use hearth_rbac::{Permissions, can_act_on, can_manage_role, check_grant};
use hearth_store::{BanRecord, MemberPatch, MemberRecord};
use hearth_types::{CommunityId, RoleId, UserId, now_ms};

use hearth_moderation::{AuditAction, TargetKind};

use crate::audit::{AuditDraft, AuditRecord};
use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::{Chat, require};
use crate::validate;

/// Discord's ceiling, and a sane one: a timeout is not a ban.
const MAX_TIMEOUT_MS: i64 = 28 * 24 * 3600 * 1000;

/// The furthest back a ban deletes the user's messages: 7 days.
pub const MAX_BAN_DELETE_SECS: u32 = 7 * 24 * 3600;

impl Chat {
    pub async fn members(
        &self,
        c: CommunityId,
        user: UserId,
        after: Option<UserId>,
        limit: u32,
    ) -> ChatResult<Vec<MemberRecord>> {
        self.community_permissions(c, user).await?;
        Ok(self.store.members(c, after, limit).await?)
    }

    pub async fn member(
        &self,
        c: CommunityId,
        user: UserId,
        target: UserId,
    ) -> ChatResult<MemberRecord> {
        self.community_permissions(c, user).await?;
        self.store
            .member(c, target)
            .await?
            .ok_or(ChatError::NotFound)
    }

    pub async fn leave(&self, c: CommunityId, user: UserId) -> ChatResult<()> {
        let (community, _) = self.visible_community(c, user).await?;
        if community.owner_id == user {
            return Err(ChatError::Conflict(
                "the owner cannot leave; delete the community instead",
            ));
        }
        self.remove(c, user).await
    }

    async fn remove(&self, c: CommunityId, user: UserId) -> ChatResult<()> {
        if self.store.remove_member(c, user).await? {
            self.permissions_changed(c);
            self.emit(ChatEvent::MemberRemove {
                community_id: c,
                user_id: user,
            });
        }
        Ok(())
    }

    /// Whether `actor` may act on `target` with `need` (held in the
    /// community, target ranked below): for moderation done outside this
    /// crate, such as muting someone in a call.
    pub async fn may_moderate(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        need: Permissions,
    ) -> ChatResult<()> {
        if actor == target {
            return Err(ChatError::Refused("you cannot moderate yourself"));
        }
        self.moderate(c, actor, target, need).await
    }

    /// Checks `need` and the role hierarchy between actor and target.
    async fn moderate(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        need: Permissions,
    ) -> ChatResult<()> {
        let p = self.community_permissions(c, actor).await?;
        require(p, need)?;
        let a = self.context(c, actor).await?;
        match self.context(c, target).await {
            Ok(t) if !can_act_on(&a.facts, &t.facts) => Err(ChatError::Refused(
                "the target's highest role is not below yours",
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn kick(&self, c: CommunityId, actor: UserId, target: UserId) -> ChatResult<()> {
        self.moderate(c, actor, target, Permissions::KICK_MEMBERS)
            .await?;
        if self.store.remove_member(c, target).await? {
            self.permissions_changed(c);
            self.emit(ChatEvent::MemberRemove {
                community_id: c,
                user_id: target,
            });
            self.audit(AuditDraft::new(
                c,
                actor,
                AuditAction::MemberKick,
                TargetKind::User,
                Some(target.0),
            ));
        }
        Ok(())
    }

    /// Bans `target` (member or not) and removes them at once.
    pub async fn ban(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        reason: Option<&str>,
    ) -> ChatResult<()> {
        self.ban_deleting(c, actor, target, reason, 0).await
    }

    /// [`Chat::ban`], also deleting the messages `target` sent in the
    /// community in the last `delete_message_secs` (0 to 604800: 7 days).
    pub async fn ban_deleting(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        reason: Option<&str>,
        delete_message_secs: u32,
    ) -> ChatResult<()> {
        if delete_message_secs > MAX_BAN_DELETE_SECS {
            return Err(ChatError::Invalid(
                "delete_message_seconds",
                format!("0 to {MAX_BAN_DELETE_SECS}"),
            ));
        }
        let reason = reason
            .map(|r| validate::text("reason", r, 512))
            .transpose()?;
        match self
            .moderate(c, actor, target, Permissions::BAN_MEMBERS)
            .await
        {
            Err(ChatError::NotFound) => {
                // Not a member: still bannable, if the actor may and the user exists.
                let p = self.community_permissions(c, actor).await?;
                require(p, Permissions::BAN_MEMBERS)?;
                self.store.user(target).await?.ok_or(ChatError::NotFound)?;
            }
            other => other?,
        }
        if actor == target {
            return Err(ChatError::Refused("you cannot ban yourself"));
        }
        let was_member = self.store.member(c, target).await?.is_some();
        self.store
            .ban(&BanRecord {
                community_id: c,
                user_id: target,
                reason: reason.clone(),
                moderator_id: actor,
                created_at: now_ms(),
            })
            .await?;
        self.permissions_changed(c);
        if was_member {
            self.emit(ChatEvent::MemberRemove {
                community_id: c,
                user_id: target,
            });
        }
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::MemberBan,
                TargetKind::User,
                Some(target.0),
            )
            .reason(reason.as_deref()),
        );
        if delete_message_secs > 0 {
            self.delete_recent(c, target, delete_message_secs).await?;
        }
        Ok(())
    }

    /// Deletes what `author` sent in the community's channels in the last
    /// `secs` (message ids carry their time), channel by channel.
    pub async fn delete_recent(
        &self,
        c: CommunityId,
        author: UserId,
        secs: u32,
    ) -> ChatResult<usize> {
        let since = now_ms() - i64::from(secs) * 1000;
        let floor = hearth_types::MessageId(hearth_types::IdGenerator::floor_for(since).0 - 1);
        let found = self
            .store
            .messages_by_author_since(c, author, floor)
            .await?;
        let mut by_channel: std::collections::BTreeMap<
            hearth_types::ChannelId,
            Vec<hearth_types::MessageId>,
        > = Default::default();
        for (ch, id) in found {
            by_channel.entry(ch).or_default().push(id);
        }
        let mut total = 0;
        for (ch, ids) in by_channel {
            total += self.delete_in_chunks(ch, Some(c), &ids).await?;
        }
        Ok(total)
    }

    /// Removes `user` from a community with the usual events, for an
    /// account being erased (owners are refused before this is reached).
    pub async fn remove_member_for_erasure(&self, c: CommunityId, user: UserId) -> ChatResult<()> {
        self.remove(c, user).await
    }

    /// Deletes every message `author` ever sent, in communities and in DMs,
    /// channel by channel (one `MESSAGE_DELETE_BULK` per hundred), for an
    /// erased account whose messages go by policy. Returns how many went.
    pub async fn delete_all_by(&self, author: UserId) -> ChatResult<usize> {
        let mut after = hearth_types::MessageId(0);
        let mut total = 0;
        loop {
            let page = self.store.messages_by_author(author, after, 10_000).await?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = last.2;
            let mut by_channel: std::collections::BTreeMap<
                hearth_types::ChannelId,
                (Option<CommunityId>, Vec<hearth_types::MessageId>),
            > = Default::default();
            for (ch, c, id) in page {
                by_channel.entry(ch).or_insert((c, Vec::new())).1.push(id);
            }
            for (ch, (c, ids)) in by_channel {
                total += self.delete_in_chunks(ch, c, &ids).await?;
            }
        }
    }

    /// Deletes `ids` from `channel` a hundred at a time, announcing each
    /// chunk (one `MESSAGE_DELETE`, or one `MESSAGE_DELETE_BULK`).
    async fn delete_in_chunks(
        &self,
        ch: hearth_types::ChannelId,
        c: Option<CommunityId>,
        ids: &[hearth_types::MessageId],
    ) -> ChatResult<usize> {
        let mut total = 0;
        for chunk in ids.chunks(100) {
            let deleted = self.store.delete_messages(ch, chunk).await?;
            total += deleted.len();
            match deleted.as_slice() {
                [] => {}
                [one] => self.emit(ChatEvent::MessageDelete {
                    channel_id: ch,
                    community_id: c,
                    id: *one,
                }),
                _ => self.emit(ChatEvent::MessageDeleteBulk {
                    channel_id: ch,
                    community_id: c,
                    ids: deleted,
                }),
            }
        }
        Ok(total)
    }

    pub async fn unban(&self, c: CommunityId, actor: UserId, target: UserId) -> ChatResult<()> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::BAN_MEMBERS)?;
        if !self.store.unban(c, target).await? {
            return Err(ChatError::NotFound);
        }
        self.audit(AuditDraft::new(
            c,
            actor,
            AuditAction::MemberUnban,
            TargetKind::User,
            Some(target.0),
        ));
        Ok(())
    }

    pub async fn bans(&self, c: CommunityId, actor: UserId) -> ChatResult<Vec<BanRecord>> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::BAN_MEMBERS)?;
        Ok(self.store.bans(c).await?)
    }

    /// Nickname (your own, or anyone's below you with MANAGE_COMMUNITY) and
    /// timeout (MODERATE_MEMBERS, below you, at most 28 days ahead).
    pub async fn update_member(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        nickname: Option<Option<String>>,
        timed_out_until: Option<Option<i64>>,
    ) -> ChatResult<MemberRecord> {
        self.community_permissions(c, actor).await?;
        let nickname = match nickname {
            Some(Some(n)) if n.trim().is_empty() => Some(None),
            Some(Some(n)) => Some(Some(validate::name("nickname", &n, 1, 32)?)),
            other => other,
        };
        if nickname.is_some() && actor != target {
            self.moderate(c, actor, target, Permissions::MANAGE_COMMUNITY)
                .await?;
        }
        if let Some(until) = timed_out_until {
            if actor == target {
                return Err(ChatError::Refused("you cannot time yourself out"));
            }
            self.moderate(c, actor, target, Permissions::MODERATE_MEMBERS)
                .await?;
            if let Some(t) = until
                && t > now_ms() + MAX_TIMEOUT_MS
            {
                return Err(ChatError::Invalid(
                    "timed_out_until",
                    "at most 28 days ahead".into(),
                ));
            }
        }
        let before = match timed_out_until {
            Some(_) => self
                .store
                .member(c, target)
                .await?
                .map(|m| m.timed_out_until),
            None => None,
        };
        let m = self
            .store
            .update_member(
                c,
                target,
                &MemberPatch {
                    nickname,
                    timed_out_until,
                },
            )
            .await?
            .ok_or(ChatError::NotFound)?;
        if let Some(until) = timed_out_until {
            self.permissions_changed(c);
            let action = if until.is_some() {
                AuditAction::MemberTimeout
            } else {
                AuditAction::MemberTimeoutClear
            };
            self.audit(
                AuditDraft::new(c, actor, action, TargetKind::User, Some(target.0))
                    .before(AuditRecord::Timeout(before.flatten()))
                    .after(AuditRecord::Timeout(m.timed_out_until)),
            );
        }
        self.emit(ChatEvent::MemberUpdate(m.clone()));
        Ok(m)
    }

    /// Adds or removes one role of a member (MANAGE_ROLES, role below yours).
    pub async fn set_member_role(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        role: RoleId,
        on: bool,
    ) -> ChatResult<MemberRecord> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::MANAGE_ROLES)?;
        let r = self
            .store
            .role(role)
            .await?
            .filter(|r| r.community_id == c)
            .ok_or(ChatError::NotFound)?;
        if r.id.0 == c.0 {
            return Err(ChatError::Invalid(
                "role_id",
                "@everyone is not assignable".into(),
            ));
        }
        // Contract v1.1 granting rule: the role's bits must all be the
        // actor's (only the owner or an ADMINISTRATOR gives ADMINISTRATOR),
        // the role must sit below the actor's highest role, and the member
        // must rank below the actor (so nobody raises or strips themselves
        // or a peer).
        check_grant(p, Permissions::from_i64(r.permissions)).map_err(ChatError::Forbidden)?;
        let a = self.context(c, actor).await?;
        if !can_manage_role(&a.facts, r.position) {
            return Err(ChatError::Refused(
                "that role is not below your highest role",
            ));
        }
        let t = self.context(c, target).await?;
        if !a.facts.is_owner && !can_act_on(&a.facts, &t.facts) {
            return Err(ChatError::Refused(
                "the member's highest role is not below yours",
            ));
        }
        let before = t.member.role_ids.clone();
        let changed = if on {
            self.store.add_member_role(c, target, role).await?
        } else {
            self.store.remove_member_role(c, target, role).await?
        };
        let m = self
            .store
            .member(c, target)
            .await?
            .ok_or(ChatError::NotFound)?;
        if changed {
            self.permissions_changed(c);
            self.emit(ChatEvent::MemberUpdate(m.clone()));
            let action = if on {
                AuditAction::MemberRoleAdd
            } else {
                AuditAction::MemberRoleRemove
            };
            self.audit(
                AuditDraft::new(c, actor, action, TargetKind::User, Some(target.0))
                    .before(AuditRecord::MemberRoles(before))
                    .after(AuditRecord::MemberRoles(m.role_ids.clone())),
            );
        }
        Ok(m)
    }
}
