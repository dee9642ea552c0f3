//! Community channels and their permission overwrites.

use hearth_rbac::{Permissions, can_act_on, can_manage_role, check_grant};
use hearth_store::{
    ChannelKind, ChannelPatch, ChannelRecord, OverwriteRecord, OverwriteTargetKind, UserRecord,
};
use hearth_types::{ChannelId, CommunityId, RoleId, UserId, now_ms};

use hearth_moderation::{AuditAction, TargetKind};

use crate::audit::{AuditDraft, AuditRecord};
use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::{Chat, require};
use crate::validate;

#[derive(Clone, Debug, Default)]
pub struct ChannelInput {
    pub name: Option<String>,
    pub kind: Option<ChannelKind>,
    pub topic: Option<Option<String>>,
    pub parent_id: Option<Option<ChannelId>>,
    pub position: Option<i32>,
    /// Voice channels: most members at once, 0-99 (0: no limit).
    pub user_limit: Option<i32>,
    /// Seconds between one member's messages, 0-21600 (0: off).
    pub slowmode_secs: Option<i32>,
    /// Only MANAGE_MESSAGES may send.
    pub locked: Option<bool>,
}

/// Most members a voice channel can be limited to (Discord's bound too).
pub const MAX_USER_LIMIT: i32 = 99;
/// The longest slowmode: six hours.
pub const MAX_SLOWMODE_SECS: i32 = 6 * 3600;

impl ChannelInput {
    /// The settings this input sets, checked against the channel's kind.
    fn settings(&self, kind: ChannelKind) -> ChatResult<(Option<i32>, Option<i32>)> {
        if let Some(n) = self.user_limit {
            if kind != ChannelKind::Voice && n != 0 {
                return Err(ChatError::Invalid(
                    "user_limit",
                    "only voice channels have a user limit".into(),
                ));
            }
            if !(0..=MAX_USER_LIMIT).contains(&n) {
                return Err(ChatError::Invalid(
                    "user_limit",
                    format!("0 (no limit) to {MAX_USER_LIMIT}"),
                ));
            }
        }
        if let Some(s) = self.slowmode_secs
            && !(0..=MAX_SLOWMODE_SECS).contains(&s)
        {
            return Err(ChatError::Invalid(
                "slowmode_secs",
                format!("0 (off) to {MAX_SLOWMODE_SECS} seconds"),
            ));
        }
        Ok((self.user_limit, self.slowmode_secs))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct OverwriteInput {
    pub target_id: i64,
    pub kind: OverwriteTargetKind,
    pub allow: Permissions,
    pub deny: Permissions,
}

const MAX_CHANNELS: usize = 500;

/// Positions are small sort keys; a bound keeps "last + 1" from overflowing.
pub const MAX_POSITION: i32 = 1_000_000;

fn check_position(p: Option<i32>) -> ChatResult<()> {
    match p {
        Some(p) if !(0..=MAX_POSITION).contains(&p) => {
            Err(ChatError::Invalid("position", format!("0-{MAX_POSITION}")))
        }
        _ => Ok(()),
    }
}

/// The bits that differ between two sets.
fn flipped(a: Permissions, b: Permissions) -> Permissions {
    (a - b) | (b - a)
}

impl Chat {
    async fn check_parent(
        &self,
        c: CommunityId,
        me: Option<ChannelId>,
        parent: Option<ChannelId>,
    ) -> ChatResult<()> {
        let Some(pid) = parent else { return Ok(()) };
        let p = self.store.channel(pid).await?;
        match p {
            Some(p) if p.community_id == Some(c) && Some(p.id) != me && p.parent_id.is_none() => {
                Ok(())
            }
            _ => Err(ChatError::Invalid(
                "parent_id",
                "a top-level channel of the same community".into(),
            )),
        }
    }

    pub async fn create_channel(
        &self,
        c: CommunityId,
        actor: UserId,
        input: ChannelInput,
    ) -> ChatResult<ChannelRecord> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::MANAGE_CHANNELS)?;
        let name = validate::channel_name(input.name.as_deref().unwrap_or_default())?;
        let kind = input.kind.unwrap_or(ChannelKind::Text);
        if kind.is_private() {
            return Err(ChatError::Invalid("kind", "\"text\" or \"voice\"".into()));
        }
        let (user_limit, slowmode_secs) = input.settings(kind)?;
        let topic = input
            .topic
            .flatten()
            .map(|t| validate::text("topic", &t, 1024))
            .transpose()?;
        let parent = input.parent_id.flatten();
        self.check_parent(c, None, parent).await?;
        let existing = self.store.channels(c).await?;
        if existing.len() >= MAX_CHANNELS {
            return Err(ChatError::Conflict(
                "this community has the most channels allowed",
            ));
        }
        check_position(input.position)?;
        let position = match input.position {
            Some(p) => p,
            None => existing
                .iter()
                .map(|c| c.position)
                .max()
                .map_or(0, |m| m.saturating_add(1).min(MAX_POSITION)),
        };
        let ch = ChannelRecord {
            id: ChannelId(self.next_id()),
            community_id: Some(c),
            kind,
            name: Some(name),
            topic,
            position,
            parent_id: parent,
            owner_id: None,
            dm_key: None,
            last_message_id: None,
            created_at: now_ms(),
            settings: hearth_store::ChannelSettings {
                user_limit: user_limit.unwrap_or(0),
                slowmode_secs: slowmode_secs.unwrap_or(0),
                locked: input.locked.unwrap_or(false),
            },
        };
        self.store.create_channel(&ch).await?;
        self.emit(ChatEvent::ChannelCreate(ch.clone()));
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::ChannelCreate,
                TargetKind::Channel,
                Some(ch.id.0),
            )
            .after(AuditRecord::Channel(ch.clone())),
        );
        Ok(ch)
    }

    /// The community's channels the actor can VIEW.
    pub async fn channels(&self, c: CommunityId, actor: UserId) -> ChatResult<Vec<ChannelRecord>> {
        self.community_permissions(c, actor).await?;
        let mut out = Vec::new();
        for ch in self.store.channels(c).await? {
            if self
                .channel_permissions(&ch, actor)
                .await?
                .contains(Permissions::VIEW_CHANNEL)
            {
                out.push(ch);
            }
        }
        Ok(out)
    }

    /// A channel the actor can see, with the recipients when it is a DM.
    pub async fn channel(
        &self,
        id: ChannelId,
        actor: UserId,
    ) -> ChatResult<(ChannelRecord, Vec<UserRecord>)> {
        let (ch, _) = self.visible_channel(id, actor).await?;
        let recipients = if Self::is_private(&ch) {
            self.store.recipients(id).await?
        } else {
            Vec::new()
        };
        Ok((ch, recipients))
    }

    pub async fn update_channel(
        &self,
        id: ChannelId,
        actor: UserId,
        input: ChannelInput,
    ) -> ChatResult<ChannelRecord> {
        let (ch, p) = self.visible_channel(id, actor).await?;
        let Some(c) = ch.community_id else {
            return Err(ChatError::Refused("DM channels cannot be edited"));
        };
        require(p, Permissions::MANAGE_CHANNELS)?;
        if input.kind.is_some_and(|k| k != ch.kind) {
            return Err(ChatError::Invalid(
                "kind",
                "a channel's kind cannot change".into(),
            ));
        }
        let (user_limit, slowmode_secs) = input.settings(ch.kind)?;
        let name = input
            .name
            .as_deref()
            .map(validate::channel_name)
            .transpose()?;
        let topic = match input.topic {
            Some(Some(t)) => Some(Some(validate::text("topic", &t, 1024)?)),
            other => other,
        };
        if let Some(parent) = input.parent_id {
            self.check_parent(c, Some(id), parent).await?;
        }
        check_position(input.position)?;
        let patch = ChannelPatch {
            name,
            topic,
            position: input.position,
            parent_id: input.parent_id,
            user_limit,
            slowmode_secs,
            locked: input.locked,
        };
        let updated = self
            .store
            .update_channel(id, &patch)
            .await?
            .ok_or(ChatError::NotFound)?;
        self.hot.forget_channel(id);
        self.emit(ChatEvent::ChannelUpdate(updated.clone()));
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::ChannelUpdate,
                TargetKind::Channel,
                Some(id.0),
            )
            .before(AuditRecord::Channel(ch))
            .after(AuditRecord::Channel(updated.clone())),
        );
        Ok(updated)
    }

    pub async fn delete_channel(&self, id: ChannelId, actor: UserId) -> ChatResult<()> {
        let (ch, p) = self.visible_channel(id, actor).await?;
        let Some(c) = ch.community_id else {
            return Err(ChatError::Refused("DM channels cannot be deleted"));
        };
        require(p, Permissions::MANAGE_CHANNELS)?;
        self.store.delete_channel(id).await?;
        self.hot.forget_channel(id);
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::ChannelDelete,
                TargetKind::Channel,
                Some(id.0),
            )
            .before(AuditRecord::Channel(ch.clone())),
        );
        self.emit(ChatEvent::ChannelDelete(ch));
        Ok(())
    }

    /// The overwrite's target must exist in the community and rank below
    /// the actor: a role below their highest role (`@everyone` is at 0), a
    /// member below them (never themselves). The owner may target anyone.
    async fn check_overwrite_target(
        &self,
        c: CommunityId,
        actor: UserId,
        kind: OverwriteTargetKind,
        target_id: i64,
    ) -> ChatResult<()> {
        let a = self.context(c, actor).await?;
        match kind {
            OverwriteTargetKind::Role => {
                let role = self
                    .store
                    .role(RoleId(target_id))
                    .await?
                    .filter(|r| r.community_id == c)
                    .ok_or(ChatError::Invalid(
                        "target_id",
                        "no such role in this community".into(),
                    ))?;
                if !can_manage_role(&a.facts, role.position) {
                    return Err(ChatError::Refused(
                        "that role is not below your highest role",
                    ));
                }
            }
            OverwriteTargetKind::Member => {
                let t = match self.context(c, UserId(target_id)).await {
                    Ok(t) => t,
                    Err(ChatError::NotFound) => {
                        return Err(ChatError::Invalid(
                            "target_id",
                            "no such member of this community".into(),
                        ));
                    }
                    Err(e) => return Err(e),
                };
                if !a.facts.is_owner && !can_act_on(&a.facts, &t.facts) {
                    return Err(ChatError::Refused(
                        "the member's highest role is not below yours",
                    ));
                }
            }
        }
        Ok(())
    }

    pub async fn overwrites(
        &self,
        id: ChannelId,
        actor: UserId,
    ) -> ChatResult<Vec<OverwriteRecord>> {
        self.visible_channel(id, actor).await?;
        Ok(self.store.overwrites(id).await?)
    }

    /// Sets an overwrite (MANAGE_ROLES in the channel; every bit it allows or
    /// denies must be one the actor has).
    pub async fn put_overwrite(
        &self,
        id: ChannelId,
        actor: UserId,
        o: OverwriteInput,
    ) -> ChatResult<OverwriteRecord> {
        let (ch, p) = self.visible_channel(id, actor).await?;
        let Some(c) = ch.community_id else {
            return Err(ChatError::Refused("DM channels have no overwrites"));
        };
        require(p, Permissions::MANAGE_ROLES)?;
        if o.allow.intersects(o.deny) {
            return Err(ChatError::Invalid(
                "allow",
                "a permission cannot be both allowed and denied".into(),
            ));
        }
        self.check_overwrite_target(c, actor, o.kind, o.target_id)
            .await?;
        // Only the bits that change must be the actor's: replacing an
        // overwrite with an empty one changes every bit it held, so a member
        // denied SEND_MESSAGES here cannot lift that deny.
        let old = self
            .store
            .overwrites(id)
            .await?
            .into_iter()
            .find(|x| x.target_id == o.target_id);
        let (old_allow, old_deny) =
            old.as_ref()
                .map_or((Permissions::EMPTY, Permissions::EMPTY), |x| {
                    (
                        Permissions::from_i64(x.allow),
                        Permissions::from_i64(x.deny),
                    )
                });
        let changed = flipped(old_allow, o.allow) | flipped(old_deny, o.deny);
        check_grant(p, changed).map_err(ChatError::Forbidden)?;
        let rec = OverwriteRecord {
            channel_id: id,
            target_id: o.target_id,
            target_kind: o.kind,
            allow: o.allow.to_i64(),
            deny: o.deny.to_i64(),
        };
        self.store.put_overwrite(&rec).await?;
        self.permissions_changed(c);
        self.emit(ChatEvent::ChannelUpdate(ch));
        let mut draft = AuditDraft::new(
            c,
            actor,
            AuditAction::OverwritePut,
            TargetKind::Channel,
            Some(id.0),
        )
        .after(AuditRecord::Overwrite(rec.clone()));
        if let Some(old) = old {
            draft = draft.before(AuditRecord::Overwrite(old));
        }
        self.audit(draft);
        Ok(rec)
    }

    pub async fn delete_overwrite(
        &self,
        id: ChannelId,
        actor: UserId,
        target_id: i64,
    ) -> ChatResult<()> {
        let (ch, p) = self.visible_channel(id, actor).await?;
        let Some(c) = ch.community_id else {
            return Err(ChatError::NotFound);
        };
        require(p, Permissions::MANAGE_ROLES)?;
        let Some(current) = self
            .store
            .overwrites(id)
            .await?
            .into_iter()
            .find(|x| x.target_id == target_id)
        else {
            return Err(ChatError::NotFound);
        };
        self.check_overwrite_target(c, actor, current.target_kind, target_id)
            .await?;
        // Deleting changes every bit the overwrite held.
        let held = Permissions::from_i64(current.allow) | Permissions::from_i64(current.deny);
        check_grant(p, held).map_err(ChatError::Forbidden)?;
        if !self.store.delete_overwrite(id, target_id).await? {
            return Err(ChatError::NotFound);
        }
        self.permissions_changed(c);
        self.emit(ChatEvent::ChannelUpdate(ch));
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::OverwriteDelete,
                TargetKind::Channel,
                Some(id.0),
            )
            .before(AuditRecord::Overwrite(current)),
        );
        Ok(())
    }
}
