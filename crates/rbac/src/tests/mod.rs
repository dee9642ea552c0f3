//! Tests: scenario tests per rule, then property tests.
//!
//! Shared builders live here so each scenario reads as the rule it checks.

mod hierarchy;
mod permissions;
mod props;
mod resolve;

use hearth_types::{RoleId, UserId};

use crate::{MemberFacts, Overwrite, OverwriteTarget, Permissions as P, RoleGrant};

/// The member under test.
const ME: UserId = UserId(10);
/// Someone else in the same community.
const OTHER: UserId = UserId(11);
/// The `@everyone` role (the community id).
const EVERYONE: RoleId = RoleId(1);

fn role(id: i64, permissions: P, position: i32) -> RoleGrant {
    RoleGrant {
        id: RoleId(id),
        permissions,
        position,
    }
}

/// A plain member (not owner, not timed out) with the given roles.
fn member(everyone: P, roles: Vec<RoleGrant>) -> MemberFacts {
    MemberFacts {
        user_id: ME,
        is_owner: false,
        everyone_role: EVERYONE,
        everyone,
        roles,
        timed_out: false,
    }
}

fn on_role(id: i64, allow: P, deny: P) -> Overwrite {
    Overwrite {
        target: OverwriteTarget::Role(RoleId(id)),
        allow,
        deny,
    }
}

fn on_everyone(allow: P, deny: P) -> Overwrite {
    Overwrite {
        target: OverwriteTarget::Role(EVERYONE),
        allow,
        deny,
    }
}

fn on_member(user: UserId, allow: P, deny: P) -> Overwrite {
    Overwrite {
        target: OverwriteTarget::Member(user),
        allow,
        deny,
    }
}
