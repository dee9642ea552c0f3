//! The bitset: fixed bit values, names, operators.

use super::P;
use crate::UnknownPermission;

/// The contract's list, in order: bit `i` is the `i`-th entry.
const CONTRACT: [(&str, P); 20] = [
    ("VIEW_CHANNEL", P::VIEW_CHANNEL),
    ("SEND_MESSAGES", P::SEND_MESSAGES),
    ("READ_MESSAGE_HISTORY", P::READ_MESSAGE_HISTORY),
    ("ADD_REACTIONS", P::ADD_REACTIONS),
    ("ATTACH_FILES", P::ATTACH_FILES),
    ("MENTION_EVERYONE", P::MENTION_EVERYONE),
    ("MANAGE_MESSAGES", P::MANAGE_MESSAGES),
    ("MANAGE_CHANNELS", P::MANAGE_CHANNELS),
    ("MANAGE_ROLES", P::MANAGE_ROLES),
    ("MANAGE_COMMUNITY", P::MANAGE_COMMUNITY),
    ("CREATE_INVITE", P::CREATE_INVITE),
    ("KICK_MEMBERS", P::KICK_MEMBERS),
    ("BAN_MEMBERS", P::BAN_MEMBERS),
    ("MODERATE_MEMBERS", P::MODERATE_MEMBERS),
    ("VIEW_AUDIT_LOG", P::VIEW_AUDIT_LOG),
    ("CONNECT", P::CONNECT),
    ("SPEAK", P::SPEAK),
    ("VIDEO", P::VIDEO),
    ("MUTE_MEMBERS", P::MUTE_MEMBERS),
    ("ADMINISTRATOR", P::ADMINISTRATOR),
];

#[test]
fn bit_values_are_fixed_in_contract_order() {
    for (i, (name, perm)) in CONTRACT.iter().enumerate() {
        assert_eq!(perm.bits(), 1u64 << i, "{name}");
        assert_eq!(P::name_of(*perm), Some(*name));
        assert_eq!(P::from_names([*name]), Ok(*perm));
    }
    assert_eq!(P::ADMINISTRATOR.bits(), 0x8_0000);
}

#[test]
fn all_is_every_defined_bit_and_nothing_else() {
    assert_eq!(P::ALL.bits(), (1 << 20) - 1);
    let union = CONTRACT.iter().fold(P::EMPTY, |acc, (_, p)| acc | *p);
    assert_eq!(union, P::ALL);
    assert_eq!(P::ALL.names().len(), 20);
    assert!(P::EMPTY.is_empty());
    assert_eq!(P::default(), P::EMPTY);
}

#[test]
fn default_everyone_and_timeout_keeps() {
    assert_eq!(
        P::DEFAULT_EVERYONE.names(),
        [
            "VIEW_CHANNEL",
            "SEND_MESSAGES",
            "READ_MESSAGE_HISTORY",
            "ADD_REACTIONS",
            "ATTACH_FILES",
            "CREATE_INVITE",
            "CONNECT",
            "SPEAK",
            "VIDEO",
        ]
    );
    assert_eq!(P::TIMEOUT_KEEPS, P::VIEW_CHANNEL | P::READ_MESSAGE_HISTORY);
}

#[test]
fn from_names_rejects_unknown_names() {
    assert_eq!(
        P::from_names(["VIEW_CHANNEL", "FLY", "SPEAK"]),
        Err(UnknownPermission("FLY".to_owned()))
    );
    assert_eq!(P::from_names([""]), Err(UnknownPermission(String::new())));
    assert_eq!(
        P::from_names([" SPEAK"]),
        Err(UnknownPermission(" SPEAK".to_owned()))
    );
}

#[test]
fn from_names_is_case_sensitive() {
    assert_eq!(
        P::from_names(["view_channel"]),
        Err(UnknownPermission("view_channel".to_owned()))
    );
    assert_eq!(
        P::from_names(["Administrator"]),
        Err(UnknownPermission("Administrator".to_owned()))
    );
}

#[test]
fn from_names_accepts_empty_duplicates_and_owned_strings() {
    assert_eq!(P::from_names(Vec::<String>::new()), Ok(P::EMPTY));
    assert_eq!(
        P::from_names(vec!["SPEAK".to_owned(), "SPEAK".to_owned()]),
        Ok(P::SPEAK)
    );
}

#[test]
fn unknown_permission_message_quotes_the_name() {
    assert_eq!(
        UnknownPermission("FLY".to_owned()).to_string(),
        r#"unknown permission "FLY""#
    );
}

#[test]
fn names_round_trip_in_canonical_order() {
    let p = P::from_names(["VIDEO", "ADMINISTRATOR", "VIEW_CHANNEL"]).expect("known names");
    assert_eq!(p.names(), ["VIEW_CHANNEL", "VIDEO", "ADMINISTRATOR"]);
    assert_eq!(P::from_names(p.names()), Ok(p));
    assert_eq!(P::from_names(P::ALL.names()), Ok(P::ALL));
    assert!(P::EMPTY.names().is_empty());
}

#[test]
fn name_of_needs_exactly_one_bit() {
    assert_eq!(P::name_of(P::EMPTY), None);
    assert_eq!(P::name_of(P::SPEAK | P::VIDEO), None);
    assert_eq!(P::name_of(P::ALL), None);
    assert_eq!(P::name_of(P::MUTE_MEMBERS), Some("MUTE_MEMBERS"));
}

#[test]
fn not_stays_within_all() {
    assert_eq!(!P::EMPTY, P::ALL);
    assert_eq!(!P::ALL, P::EMPTY);
    assert_eq!((!P::VIEW_CHANNEL).bits(), P::ALL.bits() & !1);
    assert_eq!(!!P::SPEAK, P::SPEAK);
}

#[test]
fn truncation_drops_undefined_bits() {
    assert_eq!(P::from_bits_truncate(u64::MAX), P::ALL);
    assert_eq!(P::from_bits_truncate(1 << 20), P::EMPTY);
    assert_eq!(
        P::from_bits_truncate((1 << 40) | 0b101),
        P::from_bits_truncate(0b101)
    );
    assert_eq!(P::from_i64(-1), P::ALL);
    assert_eq!(P::from_i64(i64::MIN), P::EMPTY);
    assert_eq!(P::ALL.to_i64(), (1 << 20) - 1);
    assert_eq!(
        P::from_i64(P::DEFAULT_EVERYONE.to_i64()),
        P::DEFAULT_EVERYONE
    );
}

#[test]
fn set_operators() {
    let a = P::VIEW_CHANNEL | P::SEND_MESSAGES;
    let b = P::SEND_MESSAGES | P::SPEAK;
    assert_eq!(a & b, P::SEND_MESSAGES);
    assert_eq!(a - b, P::VIEW_CHANNEL);
    assert_eq!(a | b, P::VIEW_CHANNEL | P::SEND_MESSAGES | P::SPEAK);
    let mut c = a;
    c |= P::SPEAK;
    c &= b;
    assert_eq!(c, b);
    assert!(a.contains(P::VIEW_CHANNEL));
    assert!(a.contains(P::EMPTY));
    assert!(!a.contains(b));
    assert!(a.intersects(b));
    assert!(!a.intersects(P::SPEAK));
    assert!(!a.intersects(P::EMPTY));
}
