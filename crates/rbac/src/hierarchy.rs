//! Who may change what: "nobody can grant a permission they lack or edit a
//! role at or above their highest role".
//!
//! Both rules stop privilege escalation: without the first, a member with
//! `MANAGE_ROLES` could hand out powers they do not hold; without the second,
//! they could raise or strip roles that outrank them. Comparisons are strict
//! (`>`), so peers at the same position cannot act on each other. The owner
//! sits above every role and can never be a target.

use crate::{MemberFacts, Permissions};

/// Highest role position: `i32::MAX` for the owner, otherwise the highest of
/// the member's role positions and `@everyone`'s 0.
pub fn highest_position(m: &MemberFacts) -> i32 {
    if m.is_owner {
        return i32::MAX;
    }
    m.roles.iter().map(|role| role.position).fold(0, i32::max)
}

/// `Err(missing)` with the bits of `requested` the actor lacks. An actor with
/// `ADMINISTRATOR` lacks nothing. `actor` should be the actor's resolved
/// community permissions (the owner's are already `ALL`).
pub fn check_grant(actor: Permissions, requested: Permissions) -> Result<(), Permissions> {
    if actor.contains(Permissions::ADMINISTRATOR) {
        return Ok(());
    }
    let missing = requested - actor;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

/// May the actor edit, delete, assign or remove a role at `role_position`?
/// The owner always may; anyone else only below their highest role.
pub fn can_manage_role(actor: &MemberFacts, role_position: i32) -> bool {
    actor.is_owner || highest_position(actor) > role_position
}

/// Hierarchy check for kick, ban, timeout or nickname change of `target`.
/// Nobody can act on the owner; the owner can act on anyone else; otherwise
/// the actor's highest role must be strictly above the target's.
pub fn can_act_on(actor: &MemberFacts, target: &MemberFacts) -> bool {
    if target.is_owner {
        return false;
    }
    actor.is_owner || highest_position(actor) > highest_position(target)
}
