//! Resolution scenarios, one rule each.

use super::{EVERYONE, ME, OTHER, P, member, on_everyone, on_member, on_role, role};
use crate::{channel_permissions, community_permissions};

const TALK: P = P::from_bits_truncate(P::VIEW_CHANNEL.bits() | P::SEND_MESSAGES.bits());

#[test]
fn base_is_everyone_union_roles() {
    let m = member(
        P::VIEW_CHANNEL,
        vec![role(2, P::SPEAK, 1), role(3, P::VIDEO, 2)],
    );
    assert_eq!(
        community_permissions(&m),
        P::VIEW_CHANNEL | P::SPEAK | P::VIDEO
    );
    assert_eq!(channel_permissions(&m, &[]), community_permissions(&m));
}

#[test]
fn everyone_overwrite_denies_then_allows() {
    let m = member(TALK | P::ATTACH_FILES, vec![]);
    // Deny removes a base bit; allow adds a missing one.
    let ow = on_everyone(P::SPEAK, P::ATTACH_FILES);
    assert_eq!(channel_permissions(&m, &[ow]), TALK | P::SPEAK);
    // The same bit denied and allowed in one overwrite: the allow wins.
    let both = on_everyone(P::SEND_MESSAGES, P::SEND_MESSAGES);
    assert_eq!(
        channel_permissions(&member(P::VIEW_CHANNEL, vec![]), &[both]),
        TALK
    );
}

#[test]
fn everyone_overwrite_applies_without_listing_the_role() {
    // The member never lists @everyone among `roles`; its overwrite still applies.
    let m = member(TALK, vec![role(2, P::EMPTY, 1)]);
    let ow = on_everyone(P::EMPTY, P::SEND_MESSAGES);
    assert_eq!(channel_permissions(&m, &[ow]), P::VIEW_CHANNEL);
}

#[test]
fn role_overwrite_beats_everyone_overwrite() {
    let m = member(TALK, vec![role(2, P::EMPTY, 1)]);
    let ows = [
        on_everyone(P::EMPTY, P::SEND_MESSAGES),
        on_role(2, P::SEND_MESSAGES, P::EMPTY),
    ];
    assert_eq!(channel_permissions(&m, &ows), TALK);
    let ows = [
        on_everyone(P::SPEAK, P::EMPTY),
        on_role(2, P::EMPTY, P::SPEAK),
    ];
    assert_eq!(channel_permissions(&m, &ows), TALK);
}

#[test]
fn role_overwrites_union_denies_then_union_allows() {
    let m = member(
        TALK | P::ATTACH_FILES,
        vec![role(2, P::EMPTY, 1), role(3, P::EMPTY, 2)],
    );
    let ows = [
        // Role 2 denies sending; role 3 allows it: a role allow beats another role's deny,
        // whatever the positions or list order.
        on_role(2, P::EMPTY, P::SEND_MESSAGES | P::ATTACH_FILES),
        on_role(3, P::SEND_MESSAGES, P::EMPTY),
    ];
    assert_eq!(channel_permissions(&m, &ows), TALK);
    let reversed = [ows[1], ows[0]];
    assert_eq!(channel_permissions(&m, &reversed), TALK);
}

#[test]
fn member_overwrite_deny_beats_role_allow() {
    let m = member(P::VIEW_CHANNEL, vec![role(2, P::EMPTY, 1)]);
    let ows = [
        on_role(2, P::SEND_MESSAGES, P::EMPTY),
        on_member(ME, P::EMPTY, P::SEND_MESSAGES),
    ];
    assert_eq!(channel_permissions(&m, &ows), P::VIEW_CHANNEL);
}

#[test]
fn member_overwrite_allow_beats_role_deny() {
    let m = member(TALK, vec![role(2, P::EMPTY, 1)]);
    let ows = [
        on_everyone(P::EMPTY, P::SEND_MESSAGES),
        on_role(2, P::EMPTY, P::SEND_MESSAGES),
        on_member(ME, P::SEND_MESSAGES, P::EMPTY),
    ];
    assert_eq!(channel_permissions(&m, &ows), TALK);
}

#[test]
fn member_overwrite_denies_then_allows() {
    let m = member(TALK, vec![]);
    let ow = on_member(
        ME,
        P::SEND_MESSAGES | P::SPEAK,
        P::SEND_MESSAGES | P::VIEW_CHANNEL,
    );
    assert_eq!(channel_permissions(&m, &[ow]), P::SEND_MESSAGES | P::SPEAK);
}

#[test]
fn overwrites_for_roles_the_member_lacks_are_ignored() {
    let m = member(TALK, vec![role(2, P::EMPTY, 1)]);
    let ows = [
        on_role(3, P::MANAGE_MESSAGES, P::SEND_MESSAGES),
        on_role(4, P::EMPTY, P::VIEW_CHANNEL),
    ];
    assert_eq!(channel_permissions(&m, &ows), TALK);
}

#[test]
fn overwrites_for_other_members_are_ignored() {
    let m = member(TALK, vec![]);
    let ow = on_member(OTHER, P::MANAGE_MESSAGES, P::SEND_MESSAGES);
    assert_eq!(channel_permissions(&m, &[ow]), TALK);
}

#[test]
fn duplicate_overwrites_for_one_target_are_merged() {
    let m = member(TALK, vec![]);
    let ows = [
        on_member(ME, P::SPEAK, P::EMPTY),
        on_member(ME, P::EMPTY, P::SPEAK | P::SEND_MESSAGES),
    ];
    assert_eq!(channel_permissions(&m, &ows), P::VIEW_CHANNEL | P::SPEAK);
}

#[test]
fn timeout_keeps_only_view_and_history_even_if_an_overwrite_allows_sending() {
    let mut m = member(P::DEFAULT_EVERYONE, vec![role(2, P::MANAGE_MESSAGES, 1)]);
    m.timed_out = true;
    let ows = [
        on_role(2, P::SEND_MESSAGES, P::EMPTY),
        on_member(ME, P::SEND_MESSAGES | P::ADD_REACTIONS, P::EMPTY),
    ];
    assert_eq!(channel_permissions(&m, &ows), P::TIMEOUT_KEEPS);
    assert_eq!(community_permissions(&m), P::TIMEOUT_KEEPS);
}

#[test]
fn timeout_does_not_restore_a_denied_view() {
    let mut m = member(P::DEFAULT_EVERYONE, vec![]);
    m.timed_out = true;
    let ow = on_everyone(P::EMPTY, P::VIEW_CHANNEL);
    assert_eq!(channel_permissions(&m, &[ow]), P::READ_MESSAGE_HISTORY);
}

#[test]
fn timeout_never_adds_what_the_member_lacked() {
    let mut m = member(P::VIEW_CHANNEL, vec![]);
    m.timed_out = true;
    assert_eq!(community_permissions(&m), P::VIEW_CHANNEL);
}

#[test]
fn administrator_via_role_bypasses_member_deny() {
    let m = member(P::DEFAULT_EVERYONE, vec![role(2, P::ADMINISTRATOR, 1)]);
    let ows = [
        on_everyone(P::EMPTY, P::ALL),
        on_role(2, P::EMPTY, P::ALL),
        on_member(ME, P::EMPTY, P::ALL),
    ];
    assert_eq!(channel_permissions(&m, &ows), P::ALL);
    assert_eq!(community_permissions(&m), P::ALL);
}

#[test]
fn administrator_on_everyone_gives_everyone_all() {
    let m = member(P::ADMINISTRATOR, vec![]);
    assert_eq!(community_permissions(&m), P::ALL);
    let ow = on_member(ME, P::EMPTY, P::VIEW_CHANNEL);
    assert_eq!(channel_permissions(&m, &[ow]), P::ALL);
}

#[test]
fn owner_and_administrator_ignore_timeout() {
    let mut owner = member(P::EMPTY, vec![]);
    owner.is_owner = true;
    owner.timed_out = true;
    let ow = on_member(ME, P::EMPTY, P::ALL);
    assert_eq!(community_permissions(&owner), P::ALL);
    assert_eq!(channel_permissions(&owner, &[ow]), P::ALL);

    let mut admin = member(P::EMPTY, vec![role(2, P::ADMINISTRATOR, 5)]);
    admin.timed_out = true;
    assert_eq!(community_permissions(&admin), P::ALL);
    assert_eq!(channel_permissions(&admin, &[ow]), P::ALL);
}

#[test]
fn overwrites_cannot_grant_administrator() {
    let m = member(P::VIEW_CHANNEL, vec![role(2, P::EMPTY, 1)]);
    let ows = [
        on_role(2, P::ADMINISTRATOR, P::EMPTY),
        on_member(ME, P::ADMINISTRATOR | P::SEND_MESSAGES, P::EMPTY),
    ];
    assert_eq!(channel_permissions(&m, &ows), TALK);
}

#[test]
fn everyone_role_in_roles_list_is_not_applied_twice() {
    // Defensive: if a caller lists @everyone among the roles, its overwrite is still
    // applied once, at the @everyone step, so a role's deny beats its allow.
    let m = member(
        P::VIEW_CHANNEL,
        vec![role(EVERYONE.0, P::VIEW_CHANNEL, 0), role(2, P::EMPTY, 1)],
    );
    let ows = [
        on_role(2, P::EMPTY, P::SEND_MESSAGES),
        on_everyone(P::SEND_MESSAGES, P::EMPTY),
    ];
    assert_eq!(channel_permissions(&m, &ows), P::VIEW_CHANNEL);
}
