//! Notification settings and how they combine.
//!
//! A user sets a level on their account, on a community and on a channel;
//! the narrowest scope that says something wins (channel, then community,
//! then account). DMs and group DMs do not inherit the account's level:
//! a DM is addressed to you, so it notifies unless its own channel setting
//! says otherwise. A mute (`muted_until` in the future, on the channel or
//! its community) silences everything there until it ends, mentions
//! included: that is what a user who mutes a noisy community asks for.

/// How much of a scope notifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Every message.
    All,
    /// Mentions (of the user, a role they hold, `@everyone`) and replies.
    Mentions,
    Nothing,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::All => "all",
            Level::Mentions => "mentions",
            Level::Nothing => "nothing",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "all" => Level::All,
            "mentions" => Level::Mentions,
            "nothing" => Level::Nothing,
            _ => return None,
        })
    }
}

/// What a user set on one community or channel; `None` inherits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeSetting {
    pub level: Option<Level>,
    /// Milliseconds since the epoch; silent until then.
    pub muted_until: Option<i64>,
    /// Communities only: drop `@everyone` (direct and role mentions stay).
    pub suppress_everyone: Option<bool>,
}

impl ScopeSetting {
    fn muted(&self, now: i64) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }

    /// Whether it says nothing (the stored row can go).
    pub fn is_empty(&self) -> bool {
        self.level.is_none() && self.muted_until.is_none() && self.suppress_everyone.is_none()
    }
}

/// The account's own settings (the defaults every scope inherits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSettings {
    /// For community channels.
    pub level: Level,
    pub suppress_everyone: bool,
    /// Whether a push shows the message's text (else "New message").
    pub push_previews: bool,
    /// Whether unread mentions are mailed after a while away.
    pub email_digest: bool,
}

impl Default for AccountSettings {
    /// DMs and mentions on, the rest off; previews and digests on.
    fn default() -> Self {
        AccountSettings {
            level: Level::Mentions,
            suppress_everyone: false,
            push_previews: true,
            email_digest: true,
        }
    }
}

/// The settings in force for one user in one channel at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effective {
    pub level: Level,
    pub suppress_everyone: bool,
}

impl Effective {
    /// Combines the scopes for a channel: `community` is `None` for DMs
    /// (and for a community the user set nothing on).
    pub fn resolve(
        account: &AccountSettings,
        community: Option<&ScopeSetting>,
        channel: Option<&ScopeSetting>,
        is_dm: bool,
        now: i64,
    ) -> Effective {
        let suppress_everyone = community
            .and_then(|c| c.suppress_everyone)
            .unwrap_or(account.suppress_everyone);
        let muted =
            channel.is_some_and(|c| c.muted(now)) || community.is_some_and(|c| c.muted(now));
        if muted {
            return Effective {
                level: Level::Nothing,
                suppress_everyone,
            };
        }
        let inherited = if is_dm {
            Level::All
        } else {
            community.and_then(|c| c.level).unwrap_or(account.level)
        };
        Effective {
            level: channel.and_then(|c| c.level).unwrap_or(inherited),
            suppress_everyone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn scope(level: Option<Level>, muted_until: Option<i64>) -> ScopeSetting {
        ScopeSetting {
            level,
            muted_until,
            suppress_everyone: None,
        }
    }

    #[test]
    fn the_narrowest_scope_wins() {
        let acct = AccountSettings::default();
        let e = |c: Option<&ScopeSetting>, ch: Option<&ScopeSetting>| {
            Effective::resolve(&acct, c, ch, false, NOW).level
        };
        assert_eq!(e(None, None), Level::Mentions);
        let all = scope(Some(Level::All), None);
        let nothing = scope(Some(Level::Nothing), None);
        assert_eq!(e(Some(&all), None), Level::All);
        assert_eq!(e(Some(&all), Some(&nothing)), Level::Nothing);
        assert_eq!(e(Some(&nothing), Some(&all)), Level::All);
        // A channel entry that only mutes (and has expired) inherits the level.
        assert_eq!(e(Some(&all), Some(&scope(None, Some(NOW - 1)))), Level::All);
    }

    #[test]
    fn mutes_silence_until_they_end() {
        let acct = AccountSettings::default();
        let all = scope(Some(Level::All), Some(NOW + 1));
        assert_eq!(
            Effective::resolve(&acct, None, Some(&all), false, NOW).level,
            Level::Nothing
        );
        assert_eq!(
            Effective::resolve(&acct, None, Some(&all), false, NOW + 1).level,
            Level::All
        );
        // A muted community silences its channels whatever they say.
        let c = scope(None, Some(NOW + 60_000));
        assert_eq!(
            Effective::resolve(
                &acct,
                Some(&c),
                Some(&scope(Some(Level::All), None)),
                false,
                NOW
            )
            .level,
            Level::Nothing
        );
    }

    #[test]
    fn dms_notify_unless_their_channel_says_otherwise() {
        let acct = AccountSettings {
            level: Level::Nothing,
            ..AccountSettings::default()
        };
        assert_eq!(
            Effective::resolve(&acct, None, None, true, NOW).level,
            Level::All
        );
        let m = scope(Some(Level::Mentions), None);
        assert_eq!(
            Effective::resolve(&acct, None, Some(&m), true, NOW).level,
            Level::Mentions
        );
    }

    #[test]
    fn suppressing_everyone_is_per_community_over_the_account() {
        let acct = AccountSettings {
            suppress_everyone: true,
            ..AccountSettings::default()
        };
        assert!(Effective::resolve(&acct, None, None, false, NOW).suppress_everyone);
        let c = ScopeSetting {
            suppress_everyone: Some(false),
            ..ScopeSetting::default()
        };
        assert!(!Effective::resolve(&acct, Some(&c), None, false, NOW).suppress_everyone);
    }

    #[test]
    fn levels_round_trip() {
        for l in [Level::All, Level::Mentions, Level::Nothing] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("everything"), None);
    }
}
