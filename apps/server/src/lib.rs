//! The Hearth server as a library, so tests and tools can start it in-process.
//!
//! Invariants:
//! - Only `http` knows axum and the JSON wire shapes; the domain crates below
//!   it know neither.
//! - Configuration is read once into [`config::Config`] and passed down; there
//!   is no global configuration and no `set_var`.

pub mod admin;
pub mod app;
pub mod avprobe;
pub mod channel_gate;
pub mod config;
pub mod cooldowns;
pub mod db_gate;
pub mod events;
pub mod gateway;
pub mod hot_files;
pub mod http;
pub mod journal;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod moderation;
pub mod netguard;
pub mod notify;
pub mod oidc;
pub mod ops;
pub mod resumable;
pub mod search;
pub mod state;
pub mod telemetry;
pub mod unfurl;
pub mod voice;
pub mod voice_metrics;
pub mod web;
