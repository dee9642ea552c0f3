//! The shared-state seam: state every node must agree on (rate-limit
//! counters now; presence, typing and revocations with the gateway). Each
//! piece is a small trait with a memory implementation for one node and a
//! Redis one for clusters.

mod rate_limit;

pub use rate_limit::{Decision, MemoryRateLimiter, Quota, RateLimiter};
