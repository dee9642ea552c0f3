//! Loading what rbac needs and caching the answers.
//!
//! The cache is keyed by (user, scope) where the scope is a channel or the
//! community itself, and every entry remembers the community's generation
//! when it was computed. Bumping the generation (on any role, overwrite,
//! membership or ownership change) makes every entry of that community stale
//! at once, without finding them. Entries also expire after [`ENTRY_TTL`]
//! and when a timeout ends, because time alone changes a timed-out member's
//! permissions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hearth_rbac::{MemberFacts, Overwrite, OverwriteTarget, Permissions, RoleGrant};
use hearth_store::{
    ChannelRecord, CommunityRecord, MemberRecord, OverwriteRecord, OverwriteTargetKind, RoleRecord,
};
use hearth_types::{CommunityId, RoleId, UserId, now_ms};
use parking_lot::Mutex;

const ENTRY_TTL: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 500_000;

#[derive(Default)]
pub(crate) struct PermCache {
    gens: Mutex<HashMap<CommunityId, u64>>,
    entries: Mutex<HashMap<(UserId, i64), (Permissions, u64, Instant)>>,
}

impl PermCache {
    pub fn generation(&self, c: CommunityId) -> u64 {
        self.gens.lock().get(&c).copied().unwrap_or(0)
    }

    pub fn bump(&self, c: CommunityId) {
        *self.gens.lock().entry(c).or_insert(0) += 1;
    }

    pub fn get(&self, user: UserId, scope: i64, c: CommunityId) -> Option<Permissions> {
        let gen_now = self.generation(c);
        let entries = self.entries.lock();
        let (p, g, until) = entries.get(&(user, scope))?;
        (*g == gen_now && Instant::now() < *until).then_some(*p)
    }

    pub fn put(
        &self,
        user: UserId,
        scope: i64,
        generation: u64,
        perms: Permissions,
        timed_out_until: Option<i64>,
    ) {
        let mut ttl = ENTRY_TTL;
        if let Some(t) = timed_out_until {
            let left = t - now_ms();
            if left > 0 {
                ttl = ttl.min(Duration::from_millis(left as u64));
            }
        }
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, _, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert((user, scope), (perms, generation, Instant::now() + ttl));
    }
}

/// Everything needed to resolve one member's permissions in a community.
pub(crate) struct Context {
    pub member: MemberRecord,
    pub facts: MemberFacts,
}

pub(crate) fn facts(
    community: &CommunityRecord,
    member: &MemberRecord,
    roles: &[RoleRecord],
) -> MemberFacts {
    let everyone_role = RoleId(community.id.0);
    let everyone = roles
        .iter()
        .find(|r| r.id == everyone_role)
        .map_or(Permissions::EMPTY, |r| Permissions::from_i64(r.permissions));
    MemberFacts {
        user_id: member.user.id,
        is_owner: community.owner_id == member.user.id,
        everyone_role,
        everyone,
        roles: roles
            .iter()
            .filter(|r| member.role_ids.contains(&r.id))
            .map(|r| RoleGrant {
                id: r.id,
                permissions: Permissions::from_i64(r.permissions),
                position: r.position,
            })
            .collect(),
        timed_out: member.timed_out_until.is_some_and(|t| t > now_ms()),
    }
}

pub(crate) fn overwrites(records: &[OverwriteRecord]) -> Vec<Overwrite> {
    records
        .iter()
        .map(|o| Overwrite {
            target: match o.target_kind {
                OverwriteTargetKind::Role => OverwriteTarget::Role(RoleId(o.target_id)),
                OverwriteTargetKind::Member => OverwriteTarget::Member(UserId(o.target_id)),
            },
            allow: Permissions::from_i64(o.allow),
            deny: Permissions::from_i64(o.deny),
        })
        .collect()
}

/// What a participant of a DM or group DM may do there.
pub(crate) const PRIVATE_CHANNEL: Permissions = Permissions::from_bits_truncate(
    Permissions::VIEW_CHANNEL.bits()
        | Permissions::SEND_MESSAGES.bits()
        | Permissions::READ_MESSAGE_HISTORY.bits()
        | Permissions::ADD_REACTIONS.bits()
        | Permissions::ATTACH_FILES.bits()
        | Permissions::CONNECT.bits()
        | Permissions::SPEAK.bits()
        | Permissions::VIDEO.bits(),
);

pub(crate) fn channel_is_private(c: &ChannelRecord) -> bool {
    c.kind.is_private()
}
