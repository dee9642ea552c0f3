//! Short leases on a key (e.g. "who may mint message IDs for channel 42
//! now"), with a number the last holder leaves for the next one (the
//! highest ID it used) and a way for a waiting node to ask the holder to
//! hand over. A holder that dies simply lets its lease expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::StateResult;

#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes `key` for `holder` for `ttl`, or extends it if `holder` has it.
    /// `Some(floor)`: held, with the floor the last holder left (0: none);
    /// `None`: someone else holds it.
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> StateResult<Option<i64>>;
    /// Gives `key` up, leaving `floor` (kept at the maximum ever left).
    /// `false` if `holder` no longer held it.
    async fn release(&self, key: &str, holder: &str, floor: i64) -> StateResult<bool>;
    /// Asks whoever holds `key` to hand it over soon.
    async fn request(&self, key: &str, ttl: Duration) -> StateResult<()>;
    /// Whether a handover was asked for (the ask is consumed).
    async fn requested(&self, key: &str) -> StateResult<bool>;
}

#[derive(Default)]
struct Entry {
    holder: Option<(String, Instant)>,
    floor: i64,
    asked: Option<Instant>,
}

/// Leases within one process.
#[derive(Default)]
pub struct MemoryLeases {
    keys: Mutex<HashMap<String, Entry>>,
}

#[async_trait]
impl Leases for MemoryLeases {
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> StateResult<Option<i64>> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let e = keys.entry(key.to_string()).or_default();
        match &e.holder {
            Some((h, until)) if h != holder && *until > now => Ok(None),
            _ => {
                e.holder = Some((holder.to_string(), now + ttl));
                Ok(Some(e.floor))
            }
        }
    }

    async fn release(&self, key: &str, holder: &str, floor: i64) -> StateResult<bool> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let Some(e) = keys.get_mut(key) else {
            return Ok(false);
        };
        let held = matches!(&e.holder, Some((h, until)) if h == holder && *until > now);
        if held {
            e.holder = None;
            e.floor = e.floor.max(floor);
        }
        Ok(held)
    }

    async fn request(&self, key: &str, ttl: Duration) -> StateResult<()> {
        self.keys.lock().entry(key.to_string()).or_default().asked = Some(Instant::now() + ttl);
        Ok(())
    }

    async fn requested(&self, key: &str) -> StateResult<bool> {
        let now = Instant::now();
        Ok(self
            .keys
            .lock()
            .get_mut(key)
            .and_then(|e| e.asked.take())
            .is_some_and(|until| until > now))
    }
}
