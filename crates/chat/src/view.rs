//! Resolved views in bulk, for the gateway: everything that decides which
//! channels of a community any member may VIEW, loaded once per community
//! (four queries) instead of per member, and resolved in memory with
//! `hearth-rbac` from a member's roles.
//!
//! The gateway keeps one [`CommunityRules`] per community it serves and one
//! resolved set of visible channels per (member, community), shared by that
//! member's sessions. A timeout never changes a view: a timed-out member
//! keeps VIEW_CHANNEL wherever they had it.
//!
//! Nothing here is cached: every load reads the store, so a caller that
//! reloads after a change sees it whatever this node's permission cache
//! holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use hearth_rbac::{
    MemberFacts, Overwrite, OverwriteTarget, Permissions, RoleGrant, channel_permissions,
};
use hearth_store::{ChannelRecord, CommunityRecord, MemberRecord, RoleRecord};
use hearth_types::{ChannelId, CommunityId, RoleId, UserId};

use crate::error::ChatResult;
use crate::perms;
use crate::service::Chat;

/// One community's roles, channels and overwrites: enough to resolve any
/// member's view without the database.
#[derive(Clone, Debug)]
pub struct CommunityRules {
    community: CommunityRecord,
    /// In the store's order (position, highest first).
    roles: Vec<RoleRecord>,
    /// In the store's order (position, then id).
    channels: Vec<ChannelRecord>,
    overwrites: HashMap<ChannelId, Vec<Overwrite>>,
}

impl CommunityRules {
    /// Rules from records (as loaded, or built by hand in tests).
    pub fn new(
        community: CommunityRecord,
        roles: Vec<RoleRecord>,
        channels: Vec<ChannelRecord>,
        overwrites: &[hearth_store::OverwriteRecord],
    ) -> CommunityRules {
        let mut by_channel: HashMap<ChannelId, Vec<hearth_store::OverwriteRecord>> = HashMap::new();
        for o in overwrites {
            by_channel.entry(o.channel_id).or_default().push(o.clone());
        }
        CommunityRules {
            community,
            roles,
            channels,
            overwrites: by_channel
                .into_iter()
                .map(|(ch, os)| (ch, perms::overwrites(&os)))
                .collect(),
        }
    }

    pub fn id(&self) -> CommunityId {
        self.community.id
    }

    pub fn community(&self) -> &CommunityRecord {
        &self.community
    }

    pub fn roles(&self) -> &[RoleRecord] {
        &self.roles
    }

    pub fn channels(&self) -> &[ChannelRecord] {
        &self.channels
    }

    pub fn channel(&self, id: ChannelId) -> Option<&ChannelRecord> {
        self.channels.iter().find(|c| c.id == id)
    }

    fn facts(&self, user: UserId, role_ids: &[RoleId]) -> MemberFacts {
        let everyone_role = RoleId(self.community.id.0);
        let everyone = self
            .roles
            .iter()
            .find(|r| r.id == everyone_role)
            .map_or(Permissions::EMPTY, |r| Permissions::from_i64(r.permissions));
        MemberFacts {
            user_id: user,
            is_owner: self.community.owner_id == user,
            everyone_role,
            everyone,
            roles: self
                .roles
                .iter()
                .filter(|r| role_ids.contains(&r.id))
                .map(|r| RoleGrant {
                    id: r.id,
                    permissions: Permissions::from_i64(r.permissions),
                    position: r.position,
                })
                .collect(),
            // Never changes VIEW_CHANNEL (see the module docs).
            timed_out: false,
        }
    }

    fn sees(&self, facts: &MemberFacts, ch: ChannelId) -> bool {
        let ows = self.overwrites.get(&ch).map_or(&[][..], Vec::as_slice);
        channel_permissions(facts, ows).contains(Permissions::VIEW_CHANNEL)
    }

    /// Whether the member with these roles may VIEW channel `ch` (false for
    /// a channel these rules do not hold).
    pub fn can_view(&self, user: UserId, role_ids: &[RoleId], ch: ChannelId) -> bool {
        self.channel(ch).is_some() && self.sees(&self.facts(user, role_ids), ch)
    }

    /// The channels the member with these roles may VIEW.
    pub fn visible(&self, user: UserId, role_ids: &[RoleId]) -> HashSet<ChannelId> {
        let facts = self.facts(user, role_ids);
        self.channels
            .iter()
            .map(|c| c.id)
            .filter(|ch| self.sees(&facts, *ch))
            .collect()
    }

    /// A channel created or changed (its overwrites stay as they were: they
    /// change through their own calls).
    pub fn put_channel(&mut self, ch: ChannelRecord) {
        self.channels.retain(|c| c.id != ch.id);
        let at = self
            .channels
            .partition_point(|c| (c.position, c.id) < (ch.position, ch.id));
        self.channels.insert(at, ch);
    }

    pub fn remove_channel(&mut self, id: ChannelId) {
        self.channels.retain(|c| c.id != id);
        self.overwrites.remove(&id);
    }

    pub fn put_role(&mut self, r: RoleRecord) {
        self.roles.retain(|x| x.id != r.id);
        let at = self
            .roles
            .partition_point(|x| (-x.position, x.id) < (-r.position, r.id));
        self.roles.insert(at, r);
    }

    /// A deleted role also leaves every overwrite (as in the store).
    pub fn remove_role(&mut self, id: RoleId) {
        self.roles.retain(|r| r.id != id);
        for ows in self.overwrites.values_mut() {
            ows.retain(|o| o.target != OverwriteTarget::Role(id));
        }
    }

    pub fn set_community(&mut self, c: CommunityRecord) {
        self.community = c;
    }

    /// Whether `other` gives every member exactly the views these give:
    /// the same owner, roles (bits and positions), channels and overwrites.
    /// Names, topics and order do not matter.
    pub fn same_access(&self, other: &CommunityRules) -> bool {
        let roles = |r: &CommunityRules| -> BTreeMap<RoleId, (i64, i32)> {
            r.roles
                .iter()
                .map(|x| (x.id, (x.permissions, x.position)))
                .collect()
        };
        let channels = |r: &CommunityRules| -> Vec<ChannelId> {
            let mut v: Vec<ChannelId> = r.channels.iter().map(|c| c.id).collect();
            v.sort();
            v
        };
        let overwrites = |r: &CommunityRules| -> BTreeMap<ChannelId, Vec<(i64, bool, u64, u64)>> {
            r.overwrites
                .iter()
                .filter(|(_, os)| !os.is_empty())
                .map(|(ch, os)| {
                    let mut v: Vec<(i64, bool, u64, u64)> = os
                        .iter()
                        .map(|o| {
                            let (id, member) = match o.target {
                                OverwriteTarget::Role(r) => (r.0, false),
                                OverwriteTarget::Member(u) => (u.0, true),
                            };
                            (id, member, o.allow.bits(), o.deny.bits())
                        })
                        .collect();
                    v.sort_unstable();
                    (*ch, v)
                })
                .collect()
        };
        self.community.owner_id == other.community.owner_id
            && roles(self) == roles(other)
            && channels(self) == channels(other)
            && overwrites(self) == overwrites(other)
    }
}

impl Chat {
    /// A community's rules, straight from the store; `None` if it is gone.
    /// For the gateway, which checks membership itself.
    pub async fn community_rules(&self, c: CommunityId) -> ChatResult<Option<CommunityRules>> {
        let Some(community) = self.store.community(c).await? else {
            return Ok(None);
        };
        let roles = self.store.roles(c).await?;
        let channels = self.store.channels(c).await?;
        let overwrites = self.store.community_overwrites(c).await?;
        Ok(Some(CommunityRules::new(
            community,
            roles,
            channels,
            &overwrites,
        )))
    }

    /// `user`'s membership of `c` (their roles), from the store; `None` if
    /// they are not a member.
    pub async fn membership(
        &self,
        c: CommunityId,
        user: UserId,
    ) -> ChatResult<Option<MemberRecord>> {
        Ok(self.store.member(c, user).await?)
    }

    /// Every member id of `c` (for deciding whether a community is small).
    pub async fn member_ids(&self, c: CommunityId) -> ChatResult<Vec<UserId>> {
        Ok(self.store.member_ids(c).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_store::{ChannelKind, OverwriteRecord, OverwriteTargetKind};

    fn channel(id: i64, position: i32) -> ChannelRecord {
        ChannelRecord {
            id: ChannelId(id),
            community_id: Some(CommunityId(1)),
            kind: ChannelKind::Text,
            name: Some(format!("c{id}")),
            topic: None,
            position,
            parent_id: None,
            owner_id: None,
            dm_key: None,
            last_message_id: None,
            created_at: 0,
            settings: Default::default(),
        }
    }

    fn role(id: i64, p: Permissions, position: i32) -> RoleRecord {
        RoleRecord {
            id: RoleId(id),
            community_id: CommunityId(1),
            name: format!("r{id}"),
            permissions: p.bits() as i64,
            color: None,
            position,
        }
    }

    fn rules() -> CommunityRules {
        let community = CommunityRecord {
            id: CommunityId(1),
            name: "c".into(),
            owner_id: UserId(100),
            icon_id: None,
            created_at: 0,
        };
        let view = Permissions::VIEW_CHANNEL;
        // Channel 11 hides from @everyone, shows to role 5.
        let ows = [
            OverwriteRecord {
                channel_id: ChannelId(11),
                target_id: 1,
                target_kind: OverwriteTargetKind::Role,
                allow: 0,
                deny: view.bits() as i64,
            },
            OverwriteRecord {
                channel_id: ChannelId(11),
                target_id: 5,
                target_kind: OverwriteTargetKind::Role,
                allow: view.bits() as i64,
                deny: 0,
            },
        ];
        CommunityRules::new(
            community,
            vec![role(5, Permissions::EMPTY, 1), role(1, view, 0)],
            vec![channel(10, 0), channel(11, 1)],
            &ows,
        )
    }

    #[test]
    fn views_follow_roles_and_overwrites() {
        let r = rules();
        let ids = |v: HashSet<ChannelId>| {
            let mut v: Vec<i64> = v.into_iter().map(|c| c.0).collect();
            v.sort();
            v
        };
        assert_eq!(ids(r.visible(UserId(7), &[])), [10]);
        assert_eq!(ids(r.visible(UserId(7), &[RoleId(5)])), [10, 11]);
        assert_eq!(ids(r.visible(UserId(100), &[])), [10, 11], "the owner");
        assert!(!r.can_view(UserId(7), &[], ChannelId(11)));
        assert!(
            !r.can_view(UserId(100), &[], ChannelId(99)),
            "unknown channel"
        );
    }

    #[test]
    fn edits_and_access_comparison() {
        let base = rules();
        let mut r = base.clone();
        // A rename changes nobody's access.
        let mut renamed = channel(10, 0);
        renamed.name = Some("general".into());
        r.put_channel(renamed);
        assert!(r.same_access(&base));
        // A new channel does, and sorts by position.
        r.put_channel(channel(12, 0));
        assert!(!r.same_access(&base));
        let order: Vec<i64> = r.channels().iter().map(|c| c.id.0).collect();
        assert_eq!(order, [10, 12, 11]);
        assert!(r.can_view(UserId(7), &[], ChannelId(12)));
        r.remove_channel(ChannelId(12));
        assert!(r.same_access(&base));
        // Deleting role 5 drops its overwrite: 11 stays hidden for everyone.
        r.remove_role(RoleId(5));
        assert!(!r.same_access(&base));
        assert!(!r.can_view(UserId(7), &[RoleId(5)], ChannelId(11)));
        // A role's bits matter; its name does not.
        let mut r = base.clone();
        r.put_role(role(5, Permissions::EMPTY, 1));
        assert!(r.same_access(&base));
        r.put_role(role(5, Permissions::ADMINISTRATOR, 1));
        assert!(!r.same_access(&base));
        let order: Vec<i64> = r.roles().iter().map(|x| x.id.0).collect();
        assert_eq!(order, [5, 1], "highest position first");
    }
}
