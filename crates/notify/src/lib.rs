//! Notifications (issue #13) as pure domain pieces, free of storage, HTTP
//! and the bus:
//! - [`settings`]: the levels and mutes a user sets on their account, a
//!   community or a channel, and how they combine;
//! - [`decide`]: why (if at all) one user is told about one message;
//! - [`webpush`]: Web Push's payload encryption (RFC 8291) and VAPID
//!   authorization (RFC 8292), and the payload a push carries.
//!
//! The server's notification consumer (`apps/server/src/notify.rs`) reads
//! the event log, loads what these need from the store and applies them.

pub mod decide;
pub mod settings;
pub mod webpush;

pub use decide::{MessageFacts, Reason, reason_for};
pub use settings::{AccountSettings, Effective, Level, ScopeSetting};
