//! Communities: create, list, read, rename (and set the icon), delete.

use hearth_rbac::Permissions;
use hearth_store::{ChannelKind, ChannelRecord, CommunityRecord, RoleRecord};
use hearth_types::{AttachmentId, ChannelId, CommunityId, RoleId, UserId, now_ms};

use hearth_moderation::{AuditAction, TargetKind};

use crate::audit::{AuditDraft, AuditRecord};
use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::{Chat, require};
use crate::validate;

impl Chat {
    /// Creates a community owned by `owner`, with its `@everyone` role (same id
    /// as the community) and a `general` text channel.
    pub async fn create_community(&self, owner: UserId, name: &str) -> ChatResult<CommunityRecord> {
        let name = validate::name("name", name, 1, 100)?;
        let id = CommunityId(self.next_id());
        let now = now_ms();
        let community = CommunityRecord {
            id,
            name,
            owner_id: owner,
            icon_id: None,
            created_at: now,
        };
        let everyone = RoleRecord {
            id: RoleId(id.0),
            community_id: id,
            name: "@everyone".into(),
            permissions: Permissions::DEFAULT_EVERYONE.to_i64(),
            color: None,
            position: 0,
        };
        let general = ChannelRecord {
            id: ChannelId(self.next_id()),
            community_id: Some(id),
            kind: ChannelKind::Text,
            name: Some("general".into()),
            topic: None,
            position: 0,
            parent_id: None,
            owner_id: None,
            dm_key: None,
            last_message_id: None,
            created_at: now,
            settings: Default::default(),
        };
        self.store
            .create_community(&community, &everyone, &general)
            .await?;
        self.emit(ChatEvent::CommunityCreate {
            community: community.clone(),
            user_id: owner,
        });
        Ok(community)
    }

    pub async fn communities(&self, user: UserId) -> ChatResult<Vec<CommunityRecord>> {
        Ok(self.store.communities_for_user(user).await?)
    }

    pub async fn community(&self, id: CommunityId, user: UserId) -> ChatResult<CommunityRecord> {
        Ok(self.visible_community(id, user).await?.0)
    }

    /// Renames the community and/or sets its icon (`Some(None)` clears it).
    /// An icon must be an image the actor uploaded as an icon
    /// (`POST /communities/{id}/icon`); any other id is refused alike.
    pub async fn update_community(
        &self,
        id: CommunityId,
        user: UserId,
        name: Option<&str>,
        icon: Option<Option<AttachmentId>>,
    ) -> ChatResult<CommunityRecord> {
        let (before, p) = self.visible_community(id, user).await?;
        require(p, Permissions::MANAGE_COMMUNITY)?;
        let name = name
            .map(|n| validate::name("name", n, 1, 100))
            .transpose()?;
        if let Some(Some(icon)) = icon {
            let usable = self.store.attachment(icon).await?.is_some_and(|a| {
                a.uploader_id == user
                    && a.purpose == "icon"
                    && a.content_type.starts_with("image/")
                    && !a.undecodable
            });
            if !usable {
                return Err(ChatError::Invalid(
                    "icon_id",
                    "unknown attachment (upload an image with POST /communities/{id}/icon)".into(),
                ));
            }
        }
        let c = self
            .store
            .update_community(id, name.as_deref(), icon)
            .await?
            .ok_or(ChatError::NotFound)?;
        self.emit(ChatEvent::CommunityUpdate(c.clone()));
        self.audit(
            AuditDraft::new(
                id,
                user,
                AuditAction::CommunityUpdate,
                TargetKind::Community,
                Some(id.0),
            )
            .before(AuditRecord::Community(before))
            .after(AuditRecord::Community(c.clone())),
        );
        Ok(c)
    }

    /// Whether `user` may upload an icon for the community: MANAGE_COMMUNITY,
    /// what setting it needs (404 if not a member).
    pub async fn check_icon_upload(&self, id: CommunityId, user: UserId) -> ChatResult<()> {
        let (_, p) = self.visible_community(id, user).await?;
        require(p, Permissions::MANAGE_COMMUNITY)
    }

    /// Only the owner may delete a community.
    pub async fn delete_community(&self, id: CommunityId, user: UserId) -> ChatResult<()> {
        let (c, _) = self.visible_community(id, user).await?;
        if c.owner_id != user {
            return Err(ChatError::Refused("only the owner can delete a community"));
        }
        self.remove_community(id).await
    }

    /// Deletes a community whoever owns it: the instance's staff taking it
    /// down (they checked their own policy). Its channels, messages, roles
    /// and members go with it, as when its owner deletes it.
    pub async fn take_down(&self, id: CommunityId) -> ChatResult<CommunityRecord> {
        let c = self.store.community(id).await?.ok_or(ChatError::NotFound)?;
        self.remove_community(id).await?;
        Ok(c)
    }

    async fn remove_community(&self, id: CommunityId) -> ChatResult<()> {
        self.store.delete_community(id).await?;
        self.permissions_changed(id);
        self.emit(ChatEvent::CommunityDelete { id });
        Ok(())
    }
}
