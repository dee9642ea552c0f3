//! The inputs of resolution, as plain values.
//!
//! Callers (the store, the HTTP layer) load these from wherever they live;
//! this crate never fetches anything, so every rule can be tested on values
//! built by hand.

use hearth_types::{RoleId, UserId};

use crate::Permissions;

/// One of the member's roles other than `@everyone`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleGrant {
    pub id: RoleId,
    pub permissions: Permissions,
    /// Higher is more powerful; `@everyone` sits at 0.
    pub position: i32,
}

/// Whom a channel overwrite applies to. `Role(everyone_role)` is the
/// `@everyone` overwrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OverwriteTarget {
    Role(RoleId),
    Member(UserId),
}

/// A channel's adjustment of permissions for one role or member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overwrite {
    pub target: OverwriteTarget,
    pub allow: Permissions,
    pub deny: Permissions,
}

/// Everything resolution needs to know about one member of one community.
#[derive(Clone, Debug)]
pub struct MemberFacts {
    pub user_id: UserId,
    pub is_owner: bool,
    /// The `@everyone` role id (equal to the community id).
    pub everyone_role: RoleId,
    /// `@everyone`'s permissions.
    pub everyone: Permissions,
    /// The member's other roles.
    pub roles: Vec<RoleGrant>,
    /// A timeout is in force now.
    pub timed_out: bool,
}
