//! Why one user is told about one message, if at all.
//!
//! The consumer gathers the candidates (mentioned users, holders of
//! mentioned roles, every member for `@everyone`, the replied-to author,
//! DM participants, and users who asked for every message of the channel
//! or community), checks that each may see the channel, and asks
//! [`reason_for`] with their settings in force.

use hearth_types::{RoleId, UserId};

use crate::settings::{Effective, Level};

/// What a notification is about, strongest first: a user mentioned by name
/// and also by role is told once, as mentioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Mention,
    RoleMention,
    Reply,
    Everyone,
    Dm,
    Message,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Mention => "mention",
            Reason::RoleMention => "role_mention",
            Reason::Reply => "reply",
            Reason::Everyone => "everyone",
            Reason::Dm => "dm",
            Reason::Message => "message",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Some(match s {
            "mention" => Reason::Mention,
            "role_mention" => Reason::RoleMention,
            "reply" => Reason::Reply,
            "everyone" => Reason::Everyone,
            "dm" => Reason::Dm,
            "message" => Reason::Message,
            _ => return None,
        })
    }

    /// Whether it is addressed to the user (what the `mentions` level and
    /// the email digest keep).
    pub fn is_mention(self) -> bool {
        !matches!(self, Reason::Dm | Reason::Message)
    }
}

/// What the message says about who it addresses (as the chat service
/// resolved it: mentions of members and of the community's roles only, and
/// `@everyone` only from authors allowed to).
#[derive(Clone, Copy, Debug)]
pub struct MessageFacts<'a> {
    pub author: UserId,
    pub users: &'a [UserId],
    pub roles: &'a [RoleId],
    pub everyone: bool,
    /// The author of the message this one replies to.
    pub reply_to_author: Option<UserId>,
    pub is_dm: bool,
}

/// Why `user` (holding `user_roles`) is told about the message under the
/// settings in force, or `None`. The caller has checked that the user may
/// see the channel and has not blocked the author.
pub fn reason_for(
    m: &MessageFacts<'_>,
    user: UserId,
    user_roles: &[RoleId],
    settings: Effective,
) -> Option<Reason> {
    if user == m.author {
        return None;
    }
    let addressed = if m.users.contains(&user) {
        Some(Reason::Mention)
    } else if !m.is_dm && m.roles.iter().any(|r| user_roles.contains(r)) {
        Some(Reason::RoleMention)
    } else if m.reply_to_author == Some(user) {
        Some(Reason::Reply)
    } else if !m.is_dm && m.everyone && !settings.suppress_everyone {
        Some(Reason::Everyone)
    } else {
        None
    };
    match settings.level {
        Level::Nothing => None,
        Level::Mentions => addressed,
        Level::All => addressed.or(Some(if m.is_dm { Reason::Dm } else { Reason::Message })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AUTHOR: UserId = UserId(1);
    const ME: UserId = UserId(2);
    const ROLE: RoleId = RoleId(50);

    fn eff(level: Level, suppress_everyone: bool) -> Effective {
        Effective {
            level,
            suppress_everyone,
        }
    }

    fn facts<'a>(users: &'a [UserId], roles: &'a [RoleId], everyone: bool) -> MessageFacts<'a> {
        MessageFacts {
            author: AUTHOR,
            users,
            roles,
            everyone,
            reply_to_author: None,
            is_dm: false,
        }
    }

    #[test]
    fn the_strongest_reason_is_given() {
        let m = facts(&[ME], &[ROLE], true);
        assert_eq!(
            reason_for(&m, ME, &[ROLE], eff(Level::Mentions, false)),
            Some(Reason::Mention)
        );
        let m = facts(&[], &[ROLE], true);
        assert_eq!(
            reason_for(&m, ME, &[ROLE], eff(Level::Mentions, false)),
            Some(Reason::RoleMention)
        );
        assert_eq!(
            reason_for(&m, ME, &[], eff(Level::Mentions, false)),
            Some(Reason::Everyone)
        );
    }

    #[test]
    fn suppressing_everyone_keeps_real_mentions() {
        let m = facts(&[], &[ROLE], true);
        assert_eq!(reason_for(&m, ME, &[], eff(Level::Mentions, true)), None);
        assert_eq!(
            reason_for(&m, ME, &[ROLE], eff(Level::Mentions, true)),
            Some(Reason::RoleMention)
        );
        // Under `all` the message still notifies, as a plain message.
        assert_eq!(
            reason_for(&m, ME, &[], eff(Level::All, true)),
            Some(Reason::Message)
        );
    }

    #[test]
    fn replies_and_dms() {
        let mut m = facts(&[], &[], false);
        m.reply_to_author = Some(ME);
        assert_eq!(
            reason_for(&m, ME, &[], eff(Level::Mentions, false)),
            Some(Reason::Reply)
        );
        let dm = MessageFacts {
            is_dm: true,
            reply_to_author: None,
            ..m
        };
        assert_eq!(
            reason_for(&dm, ME, &[], eff(Level::All, false)),
            Some(Reason::Dm)
        );
        assert_eq!(reason_for(&dm, ME, &[], eff(Level::Mentions, false)), None);
    }

    #[test]
    fn reasons_round_trip() {
        for r in [
            Reason::Mention,
            Reason::RoleMention,
            Reason::Reply,
            Reason::Everyone,
            Reason::Dm,
            Reason::Message,
        ] {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }

    fn level() -> impl Strategy<Value = Level> {
        prop_oneof![
            Just(Level::All),
            Just(Level::Mentions),
            Just(Level::Nothing)
        ]
    }

    proptest! {
        #[test]
        fn invariants(
            mentioned in any::<bool>(), role in any::<bool>(), everyone in any::<bool>(),
            reply in any::<bool>(), dm in any::<bool>(), l in level(), suppress in any::<bool>(),
        ) {
            let users = if mentioned { vec![ME] } else { vec![] };
            let roles = if role { vec![ROLE] } else { vec![] };
            let m = MessageFacts {
                author: AUTHOR, users: &users, roles: &roles, everyone,
                reply_to_author: reply.then_some(ME), is_dm: dm,
            };
            let r = reason_for(&m, ME, &[ROLE], eff(l, suppress));
            // Never the author; never under `nothing`.
            prop_assert_eq!(reason_for(&m, AUTHOR, &[ROLE], eff(l, suppress)), None);
            if l == Level::Nothing { prop_assert_eq!(r, None); }
            // A direct mention always gets through unless the scope is silent.
            if mentioned && l != Level::Nothing { prop_assert_eq!(r, Some(Reason::Mention)); }
            // `mentions` gives only addressed reasons.
            if l == Level::Mentions { prop_assert!(r.is_none_or(Reason::is_mention)); }
            // `all` always notifies.
            if l == Level::All { prop_assert!(r.is_some()); }
        }
    }
}
