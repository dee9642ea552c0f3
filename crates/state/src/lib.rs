//! The shared-state seam: state every node must agree on — rate-limit
//! counters, presence, typing indicators, session revocations and
//! idempotency nonces, and a cache of small hot files. Each piece is a small trait with a memory
//! implementation for one node and a Redis one for clusters, so the server
//! depends on the traits and a deployment picks the backend.
//!
//! Everything here is short-lived by design: every entry carries a TTL, so a
//! crashed node's state disappears by itself instead of needing cleanup, and
//! losing the backend loses nothing durable (the database is the record).
//!
//! Redis keys are namespaced by a configurable prefix (e.g. `hearth:`, see
//! [`RedisConnection`]), so several deployments or test runs can share one
//! server. The key layouts are documented in each `redis::*` module.

mod error;
mod files;
mod lease;
mod nonce;
mod presence;
mod rate_limit;
mod redis;
mod revocation;
pub mod sessions;
mod slots;
mod typing;
mod voice;

pub use error::{StateError, StateResult};
pub use files::{FileCache, MemoryFileCache};
pub use lease::{Leases, MemoryLeases};
pub use nonce::{Claim, MemoryNonceGuard, NonceGuard};
pub use presence::{MemoryPresence, PRESENCE_TTL, Presence, Status};
pub use rate_limit::{Decision, MemoryRateLimiter, Quota, RateLimiter};
pub use redis::{
    RedisConnection, RedisFileCache, RedisLeases, RedisNonceGuard, RedisPresence, RedisRateLimiter,
    RedisRevocations, RedisSessionLog, RedisTyping, WhenDown,
};
pub use revocation::{MemoryRevocations, RevocationStream, Revocations};
pub use sessions::{Append, Frame, MemorySessionLog, SessionLog, SessionMeta, SessionRecord};
pub use slots::{MemorySlots, RedisSlots, Slots};
pub use typing::{MemoryTyping, TYPING_TTL, Typing};
pub use voice::{MemoryVoiceStates, RedisVoiceStates, VoiceEntry, VoiceStates};
