//! Hearth's permission calculation, with no database, HTTP or async.
//!
//! Every authorization decision in the server reduces to the functions here,
//! so they are kept pure: callers load [`MemberFacts`] and [`Overwrite`]s,
//! and this crate answers. That makes each rule of the API contract testable
//! on hand-built values and by property tests.
//!
//! - `permissions`: the [`Permissions`] bitset, its fixed bit layout and
//!   wire names.
//! - `facts`: the inputs (roles, overwrites, member facts).
//! - `resolve`: effective permissions in the community and in a channel.
//! - `hierarchy`: who may grant what and act on whom.

mod facts;
mod hierarchy;
mod permissions;
mod resolve;

pub use facts::{MemberFacts, Overwrite, OverwriteTarget, RoleGrant};
pub use hierarchy::{can_act_on, can_manage_role, check_grant, highest_position};
pub use permissions::{Permissions, UnknownPermission};
pub use resolve::{channel_permissions, community_permissions, restricted_by_timeout};

#[cfg(test)]
mod tests;
