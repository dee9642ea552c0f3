//! Property tests over arbitrary bitsets, role sets and overwrites.
//!
//! Ids come from small pools so that generated overwrites often hit the
//! member's roles, roles they lack, `@everyone`, the member and others.

use hearth_types::{RoleId, UserId};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{EVERYONE, ME, OTHER, P, role};
use crate::{
    MemberFacts, Overwrite, OverwriteTarget, RoleGrant, can_act_on, can_manage_role,
    channel_permissions, check_grant, community_permissions, highest_position,
};

/// Any set, from arbitrary u64 bits (undefined ones truncated).
fn perms() -> impl Strategy<Value = P> {
    any::<u64>().prop_map(P::from_bits_truncate)
}

/// Any set without `ADMINISTRATOR`, so resolution does not short-circuit.
fn plain_perms() -> impl Strategy<Value = P> {
    perms().prop_map(|p| p - P::ADMINISTRATOR)
}

/// Roles drawn from ids 2..=7; the pool overlaps with overwrite targets.
fn roles(permissions: BoxedStrategy<P>) -> impl Strategy<Value = Vec<RoleGrant>> {
    vec((2i64..=7, permissions, -3i32..40), 0..5).prop_map(|rs| {
        rs.into_iter()
            .map(|(id, p, pos)| role(id, p, pos))
            .collect()
    })
}

fn member_with(
    permissions: BoxedStrategy<P>,
    owner: BoxedStrategy<bool>,
) -> impl Strategy<Value = MemberFacts> {
    (
        permissions.clone(),
        roles(permissions),
        owner,
        any::<bool>(),
    )
        .prop_map(|(everyone, roles, is_owner, timed_out)| MemberFacts {
            user_id: ME,
            is_owner,
            everyone_role: EVERYONE,
            everyone,
            roles,
            timed_out,
        })
}

/// Any member: sometimes owner, often with `ADMINISTRATOR` somewhere.
fn any_member() -> impl Strategy<Value = MemberFacts> {
    member_with(perms().boxed(), proptest::bool::weighted(0.1).boxed())
}

/// Not owner, no `ADMINISTRATOR` anywhere.
fn plain_member() -> impl Strategy<Value = MemberFacts> {
    member_with(plain_perms().boxed(), Just(false).boxed())
}

fn target() -> impl Strategy<Value = OverwriteTarget> {
    prop_oneof![
        (1i64..=9).prop_map(|id| OverwriteTarget::Role(RoleId(id))),
        prop_oneof![Just(ME), Just(OTHER), Just(UserId(12))].prop_map(OverwriteTarget::Member),
    ]
}

fn overwrites() -> impl Strategy<Value = Vec<Overwrite>> {
    vec(
        (target(), perms(), perms()).prop_map(|(target, allow, deny)| Overwrite {
            target,
            allow,
            deny,
        }),
        0..8,
    )
}

fn is_all_powerful(m: &MemberFacts) -> bool {
    m.is_owner
        || m.everyone.contains(P::ADMINISTRATOR)
        || m.roles
            .iter()
            .any(|r| r.permissions.contains(P::ADMINISTRATOR))
}

proptest! {
    #[test]
    fn owner_always_has_all(mut m in any_member(), ows in overwrites()) {
        m.is_owner = true;
        prop_assert_eq!(community_permissions(&m), P::ALL);
        prop_assert_eq!(channel_permissions(&m, &ows), P::ALL);
    }

    #[test]
    fn administrator_anywhere_in_base_is_all(
        mut m in plain_member(),
        ows in overwrites(),
        slot in any::<prop::sample::Index>(),
    ) {
        let slot = slot.index(m.roles.len() + 1);
        match m.roles.get_mut(slot) {
            Some(r) => r.permissions |= P::ADMINISTRATOR,
            None => m.everyone |= P::ADMINISTRATOR,
        }
        prop_assert_eq!(community_permissions(&m), P::ALL);
        prop_assert_eq!(channel_permissions(&m, &ows), P::ALL);
    }

    #[test]
    fn results_stay_within_all(m in any_member(), ows in overwrites()) {
        for p in [community_permissions(&m), channel_permissions(&m, &ows)] {
            prop_assert_eq!(p.bits() & !P::ALL.bits(), 0);
            prop_assert!(P::ALL.contains(p));
            // ADMINISTRATOR only ever shows up as part of ALL.
            prop_assert!(!p.contains(P::ADMINISTRATOR) || p == P::ALL);
        }
    }

    #[test]
    fn no_overwrites_means_community_permissions(m in any_member()) {
        prop_assert_eq!(channel_permissions(&m, &[]), community_permissions(&m));
    }

    #[test]
    fn member_overwrite_allow_is_present_unless_timed_out(
        m in any_member(),
        mut ows in overwrites(),
        allow in perms(),
        deny in perms(),
        at in any::<prop::sample::Index>(),
    ) {
        let own = Overwrite { target: OverwriteTarget::Member(ME), allow, deny };
        ows.insert(at.index(ows.len() + 1), own);
        let result = channel_permissions(&m, &ows);
        if !m.timed_out || is_all_powerful(&m) {
            prop_assert!(result.contains(allow - P::ADMINISTRATOR));
        }
    }

    #[test]
    fn member_overwrite_deny_is_absent_unless_allowed_by_it(
        m in any_member(),
        mut ows in overwrites(),
        allow in perms(),
        deny in perms(),
        at in any::<prop::sample::Index>(),
    ) {
        let own = Overwrite { target: OverwriteTarget::Member(ME), allow, deny };
        ows.insert(at.index(ows.len() + 1), own);
        let result = channel_permissions(&m, &ows);
        // Every overwrite for this member counts as "the member overwrite".
        let own_allow = ows
            .iter()
            .filter(|o| o.target == OverwriteTarget::Member(ME))
            .fold(P::EMPTY, |acc, o| acc | o.allow);
        if !is_all_powerful(&m) {
            prop_assert!(!result.intersects(deny - own_allow));
        }
    }

    #[test]
    fn overwrites_for_others_change_nothing(
        m in any_member(),
        ows in overwrites(),
        foreign_allow in perms(),
        foreign_deny in perms(),
    ) {
        let mine = channel_permissions(&m, &ows);
        let mut more = ows.clone();
        more.push(Overwrite {
            target: OverwriteTarget::Member(OTHER),
            allow: foreign_allow,
            deny: foreign_deny,
        });
        // Role 8 and 9 are never among generated roles.
        more.push(Overwrite {
            target: OverwriteTarget::Role(RoleId(8)),
            allow: foreign_allow,
            deny: foreign_deny,
        });
        prop_assert_eq!(channel_permissions(&m, &more), mine);
    }

    #[test]
    fn timed_out_plain_member_keeps_only_view_and_history(
        mut m in plain_member(),
        ows in overwrites(),
    ) {
        m.timed_out = true;
        prop_assert!(P::TIMEOUT_KEEPS.contains(community_permissions(&m)));
        prop_assert!(P::TIMEOUT_KEEPS.contains(channel_permissions(&m, &ows)));
    }

    #[test]
    fn timeout_is_the_last_step(mut m in any_member(), ows in overwrites()) {
        m.timed_out = false;
        let free = channel_permissions(&m, &ows);
        m.timed_out = true;
        let expected = if is_all_powerful(&m) { P::ALL } else { free & P::TIMEOUT_KEEPS };
        prop_assert_eq!(channel_permissions(&m, &ows), expected);
    }

    #[test]
    fn community_permissions_without_roles_is_everyone(
        everyone in perms(),
        timed_out in any::<bool>(),
    ) {
        let m = MemberFacts {
            user_id: ME,
            is_owner: false,
            everyone_role: EVERYONE,
            everyone,
            roles: vec![],
            timed_out,
        };
        let expected = if everyone.contains(P::ADMINISTRATOR) {
            P::ALL
        } else if timed_out {
            everyone & P::TIMEOUT_KEEPS
        } else {
            everyone
        };
        prop_assert_eq!(community_permissions(&m), expected);
    }

    #[test]
    fn check_grant_ok_iff_subset_or_administrator(actor in perms(), requested in perms()) {
        let ok = actor.contains(requested) || actor.contains(P::ADMINISTRATOR);
        match check_grant(actor, requested) {
            Ok(()) => prop_assert!(ok),
            Err(missing) => {
                prop_assert!(!ok);
                prop_assert_eq!(missing, requested - actor);
                prop_assert!(!missing.is_empty());
            }
        }
    }

    #[test]
    fn cannot_manage_roles_at_or_above_own(m in any_member(), offset in 0i32..1000) {
        let top = highest_position(&m);
        let position = top.saturating_add(offset);
        prop_assert_eq!(can_manage_role(&m, position), m.is_owner);
        if !m.is_owner {
            prop_assert!(can_manage_role(&m, top - 1 - offset));
        }
    }

    #[test]
    fn hierarchy_is_strict_and_spares_the_owner(a in any_member(), mut b in any_member()) {
        b.user_id = OTHER;
        prop_assert!(!(can_act_on(&a, &b) && can_act_on(&b, &a)));
        prop_assert!(!can_act_on(&a, &a));
        if b.is_owner {
            prop_assert!(!can_act_on(&a, &b));
        } else if a.is_owner {
            prop_assert!(can_act_on(&a, &b));
        }
    }

    #[test]
    fn names_round_trip(p in perms()) {
        let names = p.names();
        prop_assert_eq!(P::from_names(&names), Ok(p));
        prop_assert_eq!(names.len() as u32, p.bits().count_ones());
        // Canonical order: strictly increasing bits.
        let bits: Vec<u64> = names
            .iter()
            .map(|n| P::from_names([n]).map(P::bits).unwrap_or(0))
            .collect();
        prop_assert!(bits.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn not_and_sub_stay_within_all(a in perms(), b in perms()) {
        prop_assert!(P::ALL.contains(!a));
        prop_assert_eq!(!!a, a);
        prop_assert_eq!(a | !a, P::ALL);
        prop_assert_eq!(a & !a, P::EMPTY);
        prop_assert_eq!(a - b, a & !b);
    }

    #[test]
    fn raw_bits_truncate_and_round_trip(raw in any::<i64>()) {
        let p = P::from_i64(raw);
        prop_assert_eq!(p, P::from_bits_truncate(raw as u64));
        prop_assert_eq!(P::from_i64(p.to_i64()), p);
        prop_assert!(p.to_i64() >= 0);
    }
}
