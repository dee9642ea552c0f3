//! Rate limiting with GCRA (the generic cell rate algorithm): one timestamp
//! per key ("theoretical arrival time"), so memory stays O(keys) whatever the
//! rate, and bursts up to `burst` are allowed, then a steady `per_second`.
//! The same decision runs in Redis for clusters (`redis::rate_limit`), where
//! the one timestamp per key makes it a single atomic read-modify-write.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

/// A steady rate with a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: u32,
}

impl Quota {
    pub(crate) fn interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second.max(1e-6))
    }

    /// How far ahead of now the theoretical arrival time may run: the burst.
    pub(crate) fn tolerance(self) -> Duration {
        self.interval() * self.burst.saturating_sub(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Try again after this long.
    Limited {
        retry_after: Duration,
    },
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request for `key` against `quota`.
    async fn check(&self, key: &str, quota: Quota) -> Decision;
}

/// One node's limiter. Shards the map so concurrent keys rarely contend.
pub struct MemoryRateLimiter {
    shards: Vec<Mutex<HashMap<String, Instant>>>,
}

const SHARDS: usize = 16;

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        MemoryRateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl MemoryRateLimiter {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Instant>> {
        let h = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.shards[h % SHARDS]
    }

    /// The pure decision, at a given instant (tests drive the clock).
    pub fn check_at(&self, key: &str, quota: Quota, now: Instant) -> Decision {
        let interval = quota.interval();
        let tolerance = quota.tolerance();
        let mut map = self.shard(key).lock();
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let allow_at = tat.checked_sub(tolerance).unwrap_or(now);
        if now < allow_at {
            return Decision::Limited {
                retry_after: allow_at - now,
            };
        }
        map.insert(key.to_string(), tat + interval);
        // Keep memory bounded: drop keys that are fully rested now and then.
        if map.len() > 100_000 {
            map.retain(|_, t| *t > now);
        }
        Decision::Allowed
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Decision {
        self.check_at(key, quota, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let rl = MemoryRateLimiter::default();
        let q = Quota {
            per_second: 10.0,
            burst: 5,
        };
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(rl.check_at("k", q, t0), Decision::Allowed);
        }
        let Decision::Limited { retry_after } = rl.check_at("k", q, t0) else {
            panic!("6th in a burst of 5")
        };
        assert!(retry_after <= Duration::from_millis(100) && retry_after > Duration::ZERO);
        assert_eq!(rl.check_at("k", q, t0 + retry_after), Decision::Allowed);
        assert!(matches!(
            rl.check_at("k", q, t0 + retry_after),
            Decision::Limited { .. }
        ));
        assert_eq!(
            rl.check_at("other", q, t0),
            Decision::Allowed,
            "keys are independent"
        );
        // After a full rest the whole burst is back.
        let later = t0 + Duration::from_secs(2);
        for _ in 0..5 {
            assert_eq!(rl.check_at("k", q, later), Decision::Allowed);
        }
    }

    #[test]
    fn six_hundred_in_a_burst_are_mostly_refused() {
        let rl = MemoryRateLimiter::default();
        let q = Quota {
            per_second: 20.0,
            burst: 40,
        };
        let t0 = Instant::now();
        let allowed = (0..600)
            .filter(|_| rl.check_at("ip:1.2.3.4", q, t0) == Decision::Allowed)
            .count();
        assert_eq!(allowed, 40);
    }
}
