//! Members: list, leave, kick, ban, timeouts, nicknames, role assignment.

use hearth_rbac::{Permissions, can_act_on, can_manage_role, check_grant};
use hearth_store::{BanRecord, MemberPatch, MemberRecord};
use hearth_types::{CommunityId, RoleId, UserId, now_ms};

use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::{Chat, require};
use crate::validate;

/// Discord's ceiling, and a sane one: a timeout is not a ban.
const MAX_TIMEOUT_MS: i64 = 28 * 24 * 3600 * 1000;

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
        self.remove(c, target).await
    }

    /// Bans `target` (member or not) and removes them at once.
    pub async fn ban(
        &self,
        c: CommunityId,
        actor: UserId,
        target: UserId,
        reason: Option<&str>,
    ) -> ChatResult<()> {
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
                reason,
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
        Ok(())
    }

    pub async fn unban(&self, c: CommunityId, actor: UserId, target: UserId) -> ChatResult<()> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::BAN_MEMBERS)?;
        if !self.store.unban(c, target).await? {
            return Err(ChatError::NotFound);
        }
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
        if timed_out_until.is_some() {
            self.permissions_changed(c);
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
        }
        Ok(m)
    }
}
