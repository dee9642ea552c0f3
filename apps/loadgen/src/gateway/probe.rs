//! Send-to-receive latency. Every message's content carries its send time,
//! a bucket and a channel index (`lg:<µs since start>:<bucket>:<channel>`),
//! so a receiver needs no shared table to know when a message left or which
//! step or node it counts for; each bucket has its own HDR histogram.
//!
//! Bucket 0 is the warm-up by convention: recorded, never reported.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

pub const WARMUP: usize = 0;

pub struct Probe {
    epoch: Instant,
    buckets: Vec<Bucket>,
}

struct Bucket {
    hist: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    /// When the bucket's last delivery arrived (µs since `epoch`).
    last_us: AtomicU64,
}

pub struct Stamp {
    pub sent_us: u64,
    pub bucket: usize,
    pub channel: usize,
}

pub fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"))
}

impl Probe {
    pub fn new(buckets: usize) -> Probe {
        Probe {
            epoch: Instant::now(),
            buckets: (0..buckets)
                .map(|_| Bucket {
                    hist: Mutex::new(histogram()),
                    delivered: AtomicU64::new(0),
                    last_us: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Content for a message sent now (call it just before sending).
    pub fn content(&self, bucket: usize, channel: usize) -> String {
        format!("lg:{}:{bucket}:{channel}", self.now_us())
    }

    /// The stamp of a MESSAGE_CREATE frame; None for any other frame.
    pub fn parse(frame: &str) -> Option<Stamp> {
        if !frame.contains("\"MESSAGE_CREATE\"") {
            return None;
        }
        let rest = &frame[frame.find("\"lg:")? + 4..];
        let mut parts = rest.split('"').next()?.split(':');
        Some(Stamp {
            sent_us: parts.next()?.parse().ok()?,
            bucket: parts.next()?.parse().ok()?,
            channel: parts.next()?.parse().ok()?,
        })
    }

    /// Records a delivery of a message sent at `sent_us` into `bucket`.
    pub fn record(&self, bucket: usize, sent_us: u64) {
        let Some(b) = self.buckets.get(bucket) else {
            return;
        };
        let now = self.now_us();
        b.delivered.fetch_add(1, Ordering::Relaxed);
        b.last_us.fetch_max(now, Ordering::Relaxed);
        if let Ok(mut h) = b.hist.lock() {
            let _ = h.record(now.saturating_sub(sent_us).max(1));
        }
    }

    pub fn delivered(&self, bucket: usize) -> u64 {
        self.buckets
            .get(bucket)
            .map_or(0, |b| b.delivered.load(Ordering::Relaxed))
    }

    pub fn histogram(&self, bucket: usize) -> Histogram<u64> {
        self.buckets
            .get(bucket)
            .and_then(|b| b.hist.lock().ok().map(|h| h.clone()))
            .unwrap_or_else(histogram)
    }

    /// Seconds from `start_us` to the bucket's last delivery, at least
    /// `min`: a backlog delivered late stretches the window instead of
    /// inflating the rate.
    pub fn seconds_since(&self, bucket: usize, start_us: u64, min: f64) -> f64 {
        let last = self
            .buckets
            .get(bucket)
            .map_or(0, |b| b.last_us.load(Ordering::Relaxed));
        (last.saturating_sub(start_us) as f64 / 1e6).max(min)
    }

    /// Waits until deliveries stop for 500 ms (or `max` passes), so a step's
    /// backlog does not spill into the next one.
    pub async fn settle(&self, max: std::time::Duration) {
        let start = Instant::now();
        let total = || {
            self.buckets
                .iter()
                .map(|b| b.delivered.load(Ordering::Relaxed))
                .sum::<u64>()
        };
        let mut last = total();
        while start.elapsed() < max {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let now = total();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stamp_of_a_message_create_only() {
        let f = r#"{"op":"dispatch","s":7,"t":"MESSAGE_CREATE","d":{"id":"1","content":"lg:123456:2:31","nonce":null}}"#;
        let st = Probe::parse(f).expect("stamped");
        assert_eq!((st.sent_us, st.bucket, st.channel), (123_456, 2, 31));
        let other = r#"{"op":"dispatch","s":8,"t":"MESSAGE_UPDATE","d":{"content":"lg:1:1:1"}}"#;
        assert!(Probe::parse(other).is_none());
        let unstamped = r#"{"op":"dispatch","s":9,"t":"MESSAGE_CREATE","d":{"content":"hello"}}"#;
        assert!(Probe::parse(unstamped).is_none());
    }

    #[test]
    fn records_per_bucket() {
        let p = Probe::new(2);
        p.record(1, p.now_us());
        p.record(5, 0); // no such bucket: ignored
        assert_eq!((p.delivered(0), p.delivered(1)), (0, 1));
        assert_eq!(p.histogram(1).len(), 1);
    }
}
