//! Identifiers and small value types shared by every Hearth crate.
//!
//! This crate knows nothing of storage, HTTP or JSON wire shapes beyond the
//! decimal-string form of IDs the contract fixes.

mod id;
mod snowflake;
mod time_fmt;

pub use id::*;
pub use snowflake::{EPOCH_MS, IdGenerator, MAX_NODE_ID};
pub use time_fmt::{format_rfc3339, now_ms, parse_rfc3339};
