//! Limits that protect everyone (contract v1.1): connections per client
//! address (per node), concurrent sessions per user (across the cluster,
//! through the shared [`Slots`]), and the 120-client-frames-a-minute window
//! of each connection.
//!
//! A session holds its user's slot while a connection is attached to it
//! (identify or resume takes it, the connection ending gives it back), so a
//! client that drops and identifies again is never locked out by its own
//! dead connections; slots live [`SLOT_TTL`] unless renewed every
//! [`SLOT_RENEW`], so a node that dies frees its users' slots by itself.
//! Detached (resumable) sessions hold no slot; each node keeps at most
//! `gateway_max_sessions_per_user` of them per user, dropping the oldest.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_state::{MemorySlots, Slots};
use hearth_types::UserId;
use parking_lot::{Mutex, RwLock};

/// How long a session's slot lives without renewal.
pub const SLOT_TTL: Duration = Duration::from_secs(60);
/// How often each node renews the slots of its attached sessions.
pub const SLOT_RENEW: Duration = Duration::from_secs(20);

/// The address a connection counts against: IPv4 as is, IPv6 by its /64
/// (one host usually owns a whole /64).
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

pub struct Limits {
    /// Open connections per address key; entries at zero are removed.
    per_address: Arc<Mutex<HashMap<String, usize>>>,
    slots: RwLock<Arc<dyn Slots>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_address: Arc::default(),
            slots: RwLock::new(Arc::new(MemorySlots::default())),
        }
    }
}

/// One open connection counted against its address; dropping it gives the
/// place back.
pub struct AddressGuard {
    map: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        let mut m = self.map.lock();
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

fn slot_key(user: UserId) -> String {
    format!("gateway:{user}")
}

impl Limits {
    /// Uses `slots` (shared by every node) for the per-user count.
    pub fn share_slots(&self, slots: Arc<dyn Slots>) {
        *self.slots.write() = slots;
    }

    /// Counts a new connection from `ip`, or `None` if it already has `max`.
    pub fn open(&self, ip: &str, max: usize) -> Option<AddressGuard> {
        let key = address_key(ip);
        let mut m = self.per_address.lock();
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= max {
            if *n == 0 {
                m.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(AddressGuard {
            map: self.per_address.clone(),
            key,
        })
    }

    /// Open connections from `ip` (for tests and metrics).
    pub fn open_from(&self, ip: &str) -> usize {
        self.per_address
            .lock()
            .get(&address_key(ip))
            .copied()
            .unwrap_or(0)
    }

    /// Takes one of `user`'s `max` session slots for `session`. If the
    /// shared state cannot be reached the session is let in (and logged):
    /// a Redis outage must not lock everyone out of the gateway.
    pub async fn take_slot(&self, user: UserId, session: &str, max: usize) -> bool {
        let slots = self.slots.read().clone();
        match slots.acquire(&slot_key(user), session, max, SLOT_TTL).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, "counting gateway sessions; letting this one in");
                true
            }
        }
    }

    pub async fn give_slot(&self, user: UserId, session: &str) {
        let slots = self.slots.read().clone();
        if let Err(e) = slots.release(&slot_key(user), session).await {
            tracing::warn!(error = %e, "giving a gateway session slot back");
        }
    }

    /// Renews the slots of these (user, session) pairs.
    pub async fn renew(&self, held: Vec<(UserId, String)>) {
        if held.is_empty() {
            return;
        }
        let slots = self.slots.read().clone();
        let pairs: Vec<(String, String)> =
            held.into_iter().map(|(u, s)| (slot_key(u), s)).collect();
        if let Err(e) = slots.renew(&pairs, SLOT_TTL).await {
            tracing::warn!(error = %e, "renewing gateway session slots");
        }
    }
}

/// The client-frame limit of one connection: at most `max` frames in any
/// rolling `window`. Time is passed in, so it is tested without sleeping.
pub struct FrameWindow {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl FrameWindow {
    pub fn new(max: usize, window: Duration) -> FrameWindow {
        FrameWindow {
            max,
            window,
            recent: VecDeque::with_capacity(8),
        }
    }

    /// Counts a frame received at `now`; false if it is one too many.
    pub fn admit(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_max_frames_a_window() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut w = FrameWindow::new(120, minute);
        // 120 frames spread over the first 59 s are all allowed...
        for i in 0..120u64 {
            assert!(w.admit(t0 + Duration::from_millis(i * 490)), "frame {i}");
        }
        // ...and the 121st within the same minute is not.
        assert!(!w.admit(t0 + Duration::from_millis(59_500)));
        // A minute after the first frame, its place is free again.
        let mut w = FrameWindow::new(120, minute);
        for _ in 0..120 {
            assert!(w.admit(t0));
        }
        assert!(!w.admit(t0 + minute - Duration::from_millis(1)));
        for _ in 0..120 {
            assert!(w.admit(t0 + minute), "the first minute's places are free");
        }
        assert!(!w.admit(t0 + minute + Duration::from_secs(1)));
    }

    #[test]
    fn addresses_count_and_shrink() {
        let l = Limits::default();
        let a = l.open("10.0.0.1", 2).unwrap();
        let b = l.open("10.0.0.1", 2).unwrap();
        assert!(l.open("10.0.0.1", 2).is_none(), "third refused");
        assert!(l.open("10.0.0.2", 2).is_some(), "per address");
        // One IPv6 /64 counts as one address.
        let _c = l.open("2001:db8:1:2::1", 1).unwrap();
        assert!(l.open("2001:db8:1:2:ffff::9", 1).is_none());
        assert!(l.open("2001:db8:1:3::1", 1).is_some());
        drop(a);
        assert_eq!(l.open_from("10.0.0.1"), 1);
        drop(b);
        assert_eq!(l.open_from("10.0.0.1"), 0);
        assert!(
            !l.per_address.lock().contains_key("10.0.0.1"),
            "the map shrinks"
        );
    }

    #[tokio::test]
    async fn slots_per_user() {
        let l = Limits::default();
        let u = UserId(7);
        assert!(l.take_slot(u, "a", 2).await);
        assert!(l.take_slot(u, "b", 2).await);
        assert!(!l.take_slot(u, "c", 2).await);
        assert!(l.take_slot(u, "a", 2).await, "re-entrant");
        l.give_slot(u, "a").await;
        assert!(l.take_slot(u, "c", 2).await);
    }
}
