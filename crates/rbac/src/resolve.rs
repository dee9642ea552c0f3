//! Resolution: from roles and channel overwrites to effective permissions.
//!
//! The order is the contract's and is what makes overwrites predictable:
//! the broadest scope is applied first and the narrowest last, and within a
//! scope a deny is applied before the allow, so the more specific statement
//! always wins. Role overwrites are merged (union of denies, then union of
//! allows) because a member's roles are peers in a channel: if any one of
//! them is allowed something there, the member is.
//!
//! Owner and `ADMINISTRATOR` short-circuit to `ALL` before anything else, so
//! neither an overwrite nor a timeout can lock the people who fix things out
//! of their own community. Overwrites cannot confer `ADMINISTRATOR`: it is
//! a community-wide power decided by roles alone, so an overwrite's
//! `ADMINISTRATOR` bit has no effect. A timeout is applied last, after
//! overwrites, so no channel can let a timed-out member talk.

use crate::{MemberFacts, Overwrite, OverwriteTarget, Permissions};

/// `@everyone` ∪ the member's roles, before owner/admin/timeout.
fn base_permissions(m: &MemberFacts) -> Permissions {
    m.roles
        .iter()
        .fold(m.everyone, |acc, role| acc | role.permissions)
}

/// True when the member has everything whatever the channel or timeout.
fn is_all_powerful(m: &MemberFacts, base: Permissions) -> bool {
    m.is_owner || base.contains(Permissions::ADMINISTRATOR)
}

/// Community-wide permissions (no channel). Owner or `ADMINISTRATOR` in the
/// base gives `ALL`; otherwise a timed-out member keeps only
/// [`Permissions::TIMEOUT_KEEPS`].
pub fn community_permissions(m: &MemberFacts) -> Permissions {
    let base = base_permissions(m);
    if is_all_powerful(m, base) {
        return Permissions::ALL;
    }
    with_timeout(m, base)
}

/// Permissions in one channel given that channel's overwrites.
///
/// Overwrites for roles the member does not have, or for other members, are
/// ignored. Several overwrites for the same target are merged as one (union
/// of their denies, then union of their allows).
pub fn channel_permissions(m: &MemberFacts, overwrites: &[Overwrite]) -> Permissions {
    let base = base_permissions(m);
    if is_all_powerful(m, base) {
        return Permissions::ALL;
    }
    let everyone = merged(overwrites, |t| t == OverwriteTarget::Role(m.everyone_role));
    let roles = merged(overwrites, |t| match t {
        OverwriteTarget::Role(id) => {
            id != m.everyone_role && m.roles.iter().any(|role| role.id == id)
        }
        OverwriteTarget::Member(_) => false,
    });
    let own = merged(overwrites, |t| t == OverwriteTarget::Member(m.user_id));

    let resolved = [everyone, roles, own]
        .into_iter()
        .fold(base, |acc, (allow, deny)| (acc - deny) | allow);
    with_timeout(m, resolved - Permissions::ADMINISTRATOR)
}

/// The union of `(allow, deny)` over the overwrites whose target matches.
fn merged(
    overwrites: &[Overwrite],
    applies: impl Fn(OverwriteTarget) -> bool,
) -> (Permissions, Permissions) {
    overwrites
        .iter()
        .filter(|o| applies(o.target))
        .fold((Permissions::EMPTY, Permissions::EMPTY), |(a, d), o| {
            (a | o.allow, d | o.deny)
        })
}

/// Whether a timeout holds this member back now: timed out, and not the
/// owner or an administrator (whom resolution never restricts). Actions
/// that need no permission bit of their own, such as editing one's own
/// message or taking back one's own reaction, ask this.
pub fn restricted_by_timeout(m: &MemberFacts) -> bool {
    m.timed_out && !is_all_powerful(m, base_permissions(m))
}

fn with_timeout(m: &MemberFacts, p: Permissions) -> Permissions {
    if m.timed_out {
        p & Permissions::TIMEOUT_KEEPS
    } else {
        p
    }
}
