//! Hierarchy scenarios: positions, grants, managing roles, acting on members.

use super::{OTHER, P, member, role};
use crate::{MemberFacts, can_act_on, can_manage_role, check_grant, highest_position};

fn at(position: i32) -> MemberFacts {
    member(P::EMPTY, vec![role(2, P::EMPTY, position)])
}

fn owner() -> MemberFacts {
    let mut m = member(P::EMPTY, vec![]);
    m.is_owner = true;
    m
}

#[test]
fn highest_position_rules() {
    assert_eq!(highest_position(&owner()), i32::MAX);
    assert_eq!(highest_position(&member(P::ALL, vec![])), 0);
    let m = member(
        P::EMPTY,
        vec![
            role(2, P::EMPTY, 3),
            role(3, P::EMPTY, 7),
            role(4, P::EMPTY, 5),
        ],
    );
    assert_eq!(highest_position(&m), 7);
    // @everyone's 0 is the floor.
    assert_eq!(highest_position(&at(-4)), 0);
}

#[test]
fn check_grant_reports_missing_bits() {
    let actor = P::MANAGE_ROLES | P::SEND_MESSAGES;
    assert_eq!(check_grant(actor, P::SEND_MESSAGES), Ok(()));
    assert_eq!(check_grant(actor, P::EMPTY), Ok(()));
    assert_eq!(
        check_grant(actor, P::SEND_MESSAGES | P::BAN_MEMBERS | P::ADMINISTRATOR),
        Err(P::BAN_MEMBERS | P::ADMINISTRATOR)
    );
}

#[test]
fn administrator_lacks_nothing() {
    assert_eq!(check_grant(P::ADMINISTRATOR, P::ALL), Ok(()));
    assert_eq!(check_grant(P::ALL, P::ALL), Ok(()));
}

#[test]
fn manage_role_only_strictly_below() {
    let m = at(5);
    assert!(can_manage_role(&m, 4));
    assert!(can_manage_role(&m, 0));
    assert!(!can_manage_role(&m, 5));
    assert!(!can_manage_role(&m, 6));
    assert!(!can_manage_role(&member(P::ALL, vec![]), 0));
    assert!(can_manage_role(&owner(), i32::MAX));
}

#[test]
fn act_on_needs_a_strictly_higher_role() {
    assert!(can_act_on(&at(5), &at(4)));
    assert!(!can_act_on(&at(5), &at(5)));
    assert!(!can_act_on(&at(4), &at(5)));
    let me = at(5);
    assert!(!can_act_on(&me, &me));
}

#[test]
fn owner_acts_on_anyone_but_is_never_a_target() {
    let mut target = at(i32::MAX);
    target.user_id = OTHER;
    assert!(can_act_on(&owner(), &target));
    assert!(!can_act_on(&at(i32::MAX), &owner()));
    // Not even the owner on themself.
    assert!(!can_act_on(&owner(), &owner()));
}
