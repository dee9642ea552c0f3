//! The one integration test binary of `hearth-moderation`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "moderation/audit.rs"]
mod audit;
#[path = "moderation/automod.rs"]
mod automod;
#[path = "moderation/props.rs"]
mod props;
#[path = "moderation/reports.rs"]
mod reports;
#[path = "moderation/staff.rs"]
mod staff;
