//! The chat domain: communities, members, invites, roles, overwrites,
//! channels, DMs and messages.
//!
//! Invariants:
//! - Every operation takes the acting user and checks the contract's
//!   permission for it here, so no caller can forget; things the actor may
//!   not see answer [`ChatError::NotFound`], never "forbidden".
//! - Resolved permissions are cached per (user, channel) and per (user,
//!   community); any role, overwrite or membership change in a community
//!   bumps that community's generation, which invalidates every entry for it.
//! - Every change is announced through [`EventSink`] after it is stored. This
//!   crate knows nothing of HTTP, JSON or sockets: the gateway decides who
//!   hears what and how it is encoded.

pub mod audit;
mod channels;
mod communities;
mod dms;
mod error;
mod events;
mod gate;
mod hot;
mod invites;
mod members;
mod mentions;
mod messages;
mod ordering;
mod perms;
mod roles;
mod send_filter;
mod service;
mod slowmode;
mod validate;
pub mod view;

pub use channels::{ChannelInput, OverwriteInput};
pub use error::ChatError;
pub use events::{ChatEvent, EventSink, NoEvents};
pub use gate::ChannelGate;
pub use hearth_rbac::Permissions;
pub use invites::InvitePreview;
pub use mentions::parse_mentions;
pub use messages::{MessageView, NewMessageInput, ReactionView, SendOutcome};
pub use roles::RoleInput;
pub use send_filter::{Outgoing, SendFilter};
pub use service::{Chat, ChatConfig};
pub use slowmode::{Cooldowns, MemoryCooldowns};
