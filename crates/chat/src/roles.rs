//! Roles: create, list, edit, delete — within the actor's reach.

use hearth_rbac::{Permissions, can_manage_role, check_grant};
use hearth_store::{RolePatch, RoleRecord};
use hearth_types::{CommunityId, RoleId, UserId};

use hearth_moderation::{AuditAction, TargetKind};

use crate::audit::{AuditDraft, AuditRecord};
use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::{Chat, require};
use crate::validate;

#[derive(Clone, Debug, Default)]
pub struct RoleInput {
    pub name: Option<String>,
    pub permissions: Option<Permissions>,
    /// `Some(None)` clears the color.
    pub color: Option<Option<i32>>,
    pub position: Option<i32>,
}

fn check_color(c: Option<Option<i32>>) -> ChatResult<()> {
    match c {
        Some(Some(v)) if !(0..=0xFF_FFFF).contains(&v) => {
            Err(ChatError::Invalid("color", "0-16777215 (0xRRGGBB)".into()))
        }
        _ => Ok(()),
    }
}

impl Chat {
    pub async fn roles(&self, c: CommunityId, actor: UserId) -> ChatResult<Vec<RoleRecord>> {
        self.community_permissions(c, actor).await?;
        Ok(self.store.roles(c).await?)
    }

    pub async fn create_role(
        &self,
        c: CommunityId,
        actor: UserId,
        input: RoleInput,
    ) -> ChatResult<RoleRecord> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::MANAGE_ROLES)?;
        let name = validate::name("name", input.name.as_deref().unwrap_or_default(), 1, 100)?;
        check_color(input.color)?;
        let perms = input.permissions.unwrap_or(Permissions::EMPTY);
        check_grant(p, perms).map_err(ChatError::Forbidden)?;
        let ctx = self.context(c, actor).await?;
        let position = input.position.unwrap_or(1);
        if !(1..=crate::channels::MAX_POSITION).contains(&position) {
            return Err(ChatError::Invalid(
                "position",
                "1-1000000 (0 is @everyone)".into(),
            ));
        }
        if !can_manage_role(&ctx.facts, position) {
            return Err(ChatError::Refused(
                "a new role must sit below your highest role",
            ));
        }
        let role = RoleRecord {
            id: RoleId(self.next_id()),
            community_id: c,
            name,
            permissions: perms.to_i64(),
            color: input.color.flatten(),
            position,
        };
        self.store.create_role(&role).await?;
        self.emit(ChatEvent::RoleCreate(role.clone()));
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::RoleCreate,
                TargetKind::Role,
                Some(role.id.0),
            )
            .after(AuditRecord::Role(role.clone())),
        );
        Ok(role)
    }

    pub async fn update_role(
        &self,
        c: CommunityId,
        actor: UserId,
        role: RoleId,
        input: RoleInput,
    ) -> ChatResult<RoleRecord> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::MANAGE_ROLES)?;
        let current = self
            .store
            .role(role)
            .await?
            .filter(|r| r.community_id == c)
            .ok_or(ChatError::NotFound)?;
        let is_everyone = role.0 == c.0;
        let ctx = self.context(c, actor).await?;
        // `@everyone` sits at 0, so this also keeps a member whose only
        // power comes from `@everyone` from editing it.
        if !can_manage_role(&ctx.facts, current.position) {
            return Err(ChatError::Refused(
                "that role is not below your highest role",
            ));
        }
        if is_everyone && (input.name.is_some() || input.position.is_some()) {
            return Err(ChatError::Invalid(
                "name",
                "@everyone keeps its name and position".into(),
            ));
        }
        let name = input
            .name
            .as_deref()
            .map(|n| validate::name("name", n, 1, 100))
            .transpose()?;
        check_color(input.color)?;
        if let Some(pos) = input.position
            && (!(1..=crate::channels::MAX_POSITION).contains(&pos)
                || !can_manage_role(&ctx.facts, pos))
        {
            return Err(ChatError::Invalid(
                "position",
                "between 1 and just below your highest role".into(),
            ));
        }
        if let Some(new) = input.permissions {
            // Only what changes needs to be within the actor's own permissions:
            // removing or keeping bits they lack is not granting them.
            let old = Permissions::from_i64(current.permissions);
            let changed = (new - old) | (old - new);
            check_grant(p, changed).map_err(ChatError::Forbidden)?;
        }
        let patch = RolePatch {
            name,
            permissions: input.permissions.map(Permissions::to_i64),
            color: input.color,
            position: input.position,
        };
        let updated = self
            .store
            .update_role(role, &patch)
            .await?
            .ok_or(ChatError::NotFound)?;
        self.permissions_changed(c);
        self.emit(ChatEvent::RoleUpdate(updated.clone()));
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::RoleUpdate,
                TargetKind::Role,
                Some(role.0),
            )
            .before(AuditRecord::Role(current))
            .after(AuditRecord::Role(updated.clone())),
        );
        Ok(updated)
    }

    pub async fn delete_role(&self, c: CommunityId, actor: UserId, role: RoleId) -> ChatResult<()> {
        let p = self.community_permissions(c, actor).await?;
        require(p, Permissions::MANAGE_ROLES)?;
        let current = self
            .store
            .role(role)
            .await?
            .filter(|r| r.community_id == c)
            .ok_or(ChatError::NotFound)?;
        if role.0 == c.0 {
            return Err(ChatError::Invalid(
                "role_id",
                "@everyone cannot be deleted".into(),
            ));
        }
        let ctx = self.context(c, actor).await?;
        if !can_manage_role(&ctx.facts, current.position) {
            return Err(ChatError::Refused(
                "that role is not below your highest role",
            ));
        }
        self.store.delete_role(role).await?;
        self.permissions_changed(c);
        self.emit(ChatEvent::RoleDelete {
            community_id: c,
            role_id: role,
        });
        self.audit(
            AuditDraft::new(
                c,
                actor,
                AuditAction::RoleDelete,
                TargetKind::Role,
                Some(role.0),
            )
            .before(AuditRecord::Role(current)),
        );
        Ok(())
    }
}
