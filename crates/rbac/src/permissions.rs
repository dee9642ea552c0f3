//! The `Permissions` bitset and its names.
//!
//! Bit positions are part of the stored data (roles and overwrites keep them
//! in BIGINT columns), so they are fixed here once: bit `i` is the `i`-th name
//! in [`NAMES`], which is also the contract's order. Values outside the
//! defined bits can never exist in a `Permissions`: every constructor
//! truncates, and `!` stays within [`Permissions::ALL`]. That keeps "has
//! everything" a plain equality with `ALL` and makes stray database bits
//! harmless.

use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub};

/// A set of permissions. See the module docs for the bit layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u64);

/// Wire names in canonical order: the index of a name is its bit.
const NAMES: [&str; 20] = [
    "VIEW_CHANNEL",
    "SEND_MESSAGES",
    "READ_MESSAGE_HISTORY",
    "ADD_REACTIONS",
    "ATTACH_FILES",
    "MENTION_EVERYONE",
    "MANAGE_MESSAGES",
    "MANAGE_CHANNELS",
    "MANAGE_ROLES",
    "MANAGE_COMMUNITY",
    "CREATE_INVITE",
    "KICK_MEMBERS",
    "BAN_MEMBERS",
    "MODERATE_MEMBERS",
    "VIEW_AUDIT_LOG",
    "CONNECT",
    "SPEAK",
    "VIDEO",
    "MUTE_MEMBERS",
    "ADMINISTRATOR",
];

const ALL_BITS: u64 = (1 << NAMES.len()) - 1;

/// A name that is not one of the contract's permission names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl Permissions {
    pub const EMPTY: Permissions = Permissions(0);
    /// Every defined bit and nothing else.
    pub const ALL: Permissions = Permissions(ALL_BITS);

    pub const VIEW_CHANNEL: Permissions = Permissions(1 << 0);
    pub const SEND_MESSAGES: Permissions = Permissions(1 << 1);
    pub const READ_MESSAGE_HISTORY: Permissions = Permissions(1 << 2);
    pub const ADD_REACTIONS: Permissions = Permissions(1 << 3);
    pub const ATTACH_FILES: Permissions = Permissions(1 << 4);
    pub const MENTION_EVERYONE: Permissions = Permissions(1 << 5);
    pub const MANAGE_MESSAGES: Permissions = Permissions(1 << 6);
    pub const MANAGE_CHANNELS: Permissions = Permissions(1 << 7);
    pub const MANAGE_ROLES: Permissions = Permissions(1 << 8);
    pub const MANAGE_COMMUNITY: Permissions = Permissions(1 << 9);
    pub const CREATE_INVITE: Permissions = Permissions(1 << 10);
    pub const KICK_MEMBERS: Permissions = Permissions(1 << 11);
    pub const BAN_MEMBERS: Permissions = Permissions(1 << 12);
    pub const MODERATE_MEMBERS: Permissions = Permissions(1 << 13);
    pub const VIEW_AUDIT_LOG: Permissions = Permissions(1 << 14);
    pub const CONNECT: Permissions = Permissions(1 << 15);
    pub const SPEAK: Permissions = Permissions(1 << 16);
    pub const VIDEO: Permissions = Permissions(1 << 17);
    pub const MUTE_MEMBERS: Permissions = Permissions(1 << 18);
    pub const ADMINISTRATOR: Permissions = Permissions(1 << 19);

    /// What a new community's `@everyone` role gets.
    pub const DEFAULT_EVERYONE: Permissions = Permissions(
        Self::VIEW_CHANNEL.0
            | Self::SEND_MESSAGES.0
            | Self::READ_MESSAGE_HISTORY.0
            | Self::ADD_REACTIONS.0
            | Self::ATTACH_FILES.0
            | Self::CREATE_INVITE.0
            | Self::CONNECT.0
            | Self::SPEAK.0
            | Self::VIDEO.0,
    );

    /// What a timed-out member keeps: they may still read, not act.
    pub const TIMEOUT_KEEPS: Permissions =
        Permissions(Self::VIEW_CHANNEL.0 | Self::READ_MESSAGE_HISTORY.0);

    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Builds a set from raw bits, dropping any bit that is not defined.
    pub const fn from_bits_truncate(bits: u64) -> Permissions {
        Permissions(bits & ALL_BITS)
    }

    /// For SQL BIGINT columns. Lossless: only the low 20 bits are ever set.
    pub fn to_i64(self) -> i64 {
        self.0 as i64
    }

    /// For SQL BIGINT columns; undefined bits (including the sign) are dropped.
    pub fn from_i64(v: i64) -> Permissions {
        Permissions::from_bits_truncate(v as u64)
    }

    /// True when every bit of `other` is in `self` (so always for `EMPTY`).
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when `self` and `other` share at least one bit.
    pub fn intersects(self, other: Permissions) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses wire names. Exact, case-sensitive match; duplicates are fine;
    /// the first unknown name is the error.
    pub fn from_names<I, S>(names: I) -> Result<Permissions, UnknownPermission>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names.into_iter().try_fold(Permissions::EMPTY, |acc, name| {
            let name = name.as_ref();
            match NAMES.iter().position(|n| *n == name) {
                Some(bit) => Ok(acc | Permissions(1 << bit)),
                None => Err(UnknownPermission(name.to_owned())),
            }
        })
    }

    /// The names of the set bits, in canonical (bit) order.
    pub fn names(self) -> Vec<&'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect()
    }

    /// The name of a single permission; `None` unless exactly one bit is set.
    pub fn name_of(single: Permissions) -> Option<&'static str> {
        if single.0.count_ones() == 1 {
            NAMES.get(single.0.trailing_zeros() as usize).copied()
        } else {
            None
        }
    }
}

impl BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 | rhs.0)
    }
}

impl BitOrAssign for Permissions {
    fn bitor_assign(&mut self, rhs: Permissions) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Permissions {
    type Output = Permissions;
    fn bitand(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 & rhs.0)
    }
}

impl BitAndAssign for Permissions {
    fn bitand_assign(&mut self, rhs: Permissions) {
        self.0 &= rhs.0;
    }
}

impl Not for Permissions {
    type Output = Permissions;
    /// The complement within `ALL`, never setting undefined bits.
    fn not(self) -> Permissions {
        Permissions(!self.0 & ALL_BITS)
    }
}

impl Sub for Permissions {
    type Output = Permissions;
    /// Set difference: `a - b == a & !b`.
    fn sub(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 & !rhs.0)
    }
}
