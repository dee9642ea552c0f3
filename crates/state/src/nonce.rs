//! Cross-node idempotency: the first node to claim a key wins, and every
//! later claim learns the winner's value.
//!
//! A client retrying a send (same channel, author and nonce) may land on
//! another node; each node asks here before inserting, so the retry gets
//! the original message id instead of a duplicate message. Claims expire
//! (24 h for message nonces) because retries only come soon after.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::StateResult;

/// The outcome of a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the key now, with its value.
    New,
    /// Someone claimed it first; this is their value.
    Existing(String),
}

#[async_trait]
pub trait NonceGuard: Send + Sync + 'static {
    /// Atomically stores `value` under `key` for `ttl` unless the key is
    /// held; on [`Claim::Existing`] nothing changes.
    async fn claim(&self, key: &str, value: &str, ttl: Duration) -> StateResult<Claim>;

    /// Gives a claim back (e.g. the insert it guarded failed), but only if
    /// it still holds `value`, so a caller never frees someone else's claim.
    /// Returns whether it was released.
    async fn release(&self, key: &str, value: &str) -> StateResult<bool>;
}

/// One node's claims: key to value and deadline.
#[derive(Default)]
pub struct MemoryNonceGuard {
    claims: Mutex<Claims>,
}

#[derive(Default)]
struct Claims {
    map: HashMap<String, (String, Instant)>,
    /// Size at which expired claims are next swept (amortised O(1)).
    sweep_at: usize,
}

#[async_trait]
impl NonceGuard for MemoryNonceGuard {
    async fn claim(&self, key: &str, value: &str, ttl: Duration) -> StateResult<Claim> {
        let now = Instant::now();
        let mut claims = self.claims.lock();
        if let Some((held, deadline)) = claims.map.get(key)
            && *deadline > now
        {
            return Ok(Claim::Existing(held.clone()));
        }
        claims
            .map
            .insert(key.to_string(), (value.to_string(), now + ttl));
        // Keep memory bounded: sweep expired claims whenever the map doubles.
        if claims.map.len() > claims.sweep_at {
            claims.map.retain(|_, (_, deadline)| *deadline > now);
            claims.sweep_at = (claims.map.len() * 2).max(1024);
        }
        Ok(Claim::New)
    }

    async fn release(&self, key: &str, value: &str) -> StateResult<bool> {
        let now = Instant::now();
        let mut claims = self.claims.lock();
        match claims.map.get(key) {
            Some((held, deadline)) if held == value && *deadline > now => {
                claims.map.remove(key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
