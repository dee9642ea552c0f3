//! Newtype IDs. Every ID is a 64-bit time-ordered snowflake; on the wire it is a
//! decimal string so that JavaScript clients never lose precision.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The raw snowflake every typed ID wraps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Snowflake(pub i64);

impl Snowflake {
    /// Milliseconds since the Unix epoch at which this ID was made.
    pub fn timestamp_ms(self) -> i64 {
        (self.0 >> 22) + crate::EPOCH_MS
    }
}

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub i64);

        impl $name {
            pub fn get(self) -> i64 { self.0 }
            pub fn created_ms(self) -> i64 { Snowflake(self.0).timestamp_ms() }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.0.fmt(f) }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> { parse_id(s).map($name) }
        }

        impl From<Snowflake> for $name {
            fn from(s: Snowflake) -> Self { $name(s.0) }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

id_type! {
    /// A user account.
    UserId,
    /// A community (a "server" in other products).
    CommunityId,
    /// A text, voice or DM channel.
    ChannelId,
    /// A chat message.
    MessageId,
    /// A role in a community. The `@everyone` role has the community's ID.
    RoleId,
    /// A login session (one per device sign-in).
    SessionId,
    /// An uploaded file (media comes later; avatars reference it already).
    AttachmentId,
    /// A link preview shown under a message.
    EmbedId,
}

impl From<CommunityId> for RoleId {
    /// The `@everyone` role shares its community's ID.
    fn from(c: CommunityId) -> Self {
        RoleId(c.0)
    }
}

/// A string that is not a positive decimal 64-bit ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected an ID: a positive decimal integer in a string")
    }
}

impl std::error::Error for InvalidId {}

fn parse_id(s: &str) -> Result<i64, InvalidId> {
    // Only plain ASCII digits: no sign, no spaces, no leading '+', at most 19 digits.
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidId);
    }
    match s.parse::<i64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(InvalidId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_strings() {
        let id = MessageId(1234567890123456789);
        let json = serde_json_like(&id);
        assert_eq!(json, "1234567890123456789");
        assert_eq!("42".parse::<UserId>(), Ok(UserId(42)));
    }

    #[test]
    fn bad_ids_are_rejected() {
        for bad in [
            "",
            "-1",
            "0",
            "+5",
            " 5",
            "5 ",
            "1e3",
            "99999999999999999999",
            "abc",
            "1\u{0}",
        ] {
            assert_eq!(bad.parse::<UserId>(), Err(InvalidId), "{bad:?}");
        }
    }

    fn serde_json_like(id: &MessageId) -> String {
        id.to_string()
    }
}
