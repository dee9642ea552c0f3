//! IDs of this crate's own records. Like `hearth-types`' IDs they are
//! snowflakes, written as decimal strings in JSON.

use std::fmt;
use std::str::FromStr;

use hearth_types::InvalidId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! local_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.0.fmt(f) }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                // The same grammar as `hearth-types`' IDs.
                s.parse::<hearth_types::UserId>().map(|u| $name(u.0))
            }
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

local_id! {
    /// An automod rule of a community.
    AutomodRuleId,
    /// An audit-log entry: the ID of the bus event it was written from, so a
    /// redelivered event is recorded once.
    AuditEntryId,
    /// A report to a community's moderators or to the instance's staff.
    ReportId,
}
