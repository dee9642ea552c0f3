//! The SFU's own delay: from a media datagram's arrival (the kernel's receive timestamp on
//! the room socket, so time spent queued in the socket counts) to the moment its last
//! forwarded copy was handed back to the kernel. End-to-end latency also holds both
//! clients' SRTP and scheduling; this is the part the SFU adds, for operators (Prometheus)
//! and for the load generator's figures.
//!
//! A fixed-bucket histogram of atomics: recorded on the packet path without a lock, read
//! as cumulative buckets like a Prometheus histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the last bucket is everything above).
/// Fine below 5 ms, where the target is.
pub const DELAY_BOUNDS_US: [u64; 22] = [
    25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500,
    10_000, 20_000, 50_000, 100_000, 250_000,
];

/// The histogram the room loops record into.
#[derive(Default)]
pub(crate) struct DelayRecorder {
    /// One per bound, and one for above the last.
    buckets: [AtomicU64; DELAY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl DelayRecorder {
    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = DELAY_BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DelayHistogram {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        DelayHistogram {
            cumulative,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot: cumulative counts per bucket of [`DELAY_BOUNDS_US`] (the last entry, for
/// "above every bound", is the total count), and the sum of all delays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelayHistogram {
    pub cumulative: Vec<u64>,
    pub sum_us: u64,
}

impl DelayHistogram {
    /// Datagrams recorded.
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The delay at quantile `q` (0–1), interpolated linearly inside its bucket as
    /// Prometheus's `histogram_quantile` does; `None` when nothing was recorded. Above the
    /// last bound the answer is that bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let mut below = 0u64;
        let mut lower = 0u64;
        for (i, &c) in self.cumulative.iter().enumerate() {
            let Some(&upper) = DELAY_BOUNDS_US.get(i) else {
                return Some(Duration::from_micros(lower));
            };
            if c as f64 >= rank && c > below {
                let within = (rank - below as f64) / (c - below) as f64;
                let us = lower as f64 + within.clamp(0.0, 1.0) * (upper - lower) as f64;
                return Some(Duration::from_micros(us.round() as u64));
            }
            below = c;
            lower = upper;
        }
        Some(Duration::from_micros(lower))
    }

    /// What was recorded between `earlier` and this snapshot.
    pub fn since(&self, earlier: &DelayHistogram) -> DelayHistogram {
        DelayHistogram {
            cumulative: self
                .cumulative
                .iter()
                .enumerate()
                .map(|(i, c)| c.saturating_sub(earlier.cumulative.get(i).copied().unwrap_or(0)))
                .collect(),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_land_in_their_buckets_and_quantiles_interpolate() {
        let r = DelayRecorder::default();
        assert_eq!(r.snapshot().quantile(0.5), None);
        // 90 at 60 µs (bucket 50–75), 10 at 4.5 ms (bucket 4–5 ms).
        for _ in 0..90 {
            r.record(Duration::from_micros(60));
        }
        for _ in 0..10 {
            r.record(Duration::from_micros(4_500));
        }
        let h = r.snapshot();
        assert_eq!(h.count(), 100);
        assert_eq!(h.sum_us, 90 * 60 + 10 * 4_500);
        // Rank 50 of the 90 in 50–75 µs: 50 + 50/90 × 25.
        let p50 = h.quantile(0.5).expect("recorded").as_micros();
        assert!((63..=64).contains(&p50), "{p50}");
        // Rank 99: nine of the ten in 4–5 ms.
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(4_900)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_micros(5_000)));
    }

    #[test]
    fn a_bound_is_inclusive_and_the_overflow_reports_the_last_bound() {
        let r = DelayRecorder::default();
        r.record(Duration::from_micros(25));
        r.record(Duration::from_secs(2));
        let h = r.snapshot();
        assert_eq!(h.cumulative[0], 1);
        assert_eq!(h.cumulative[DELAY_BOUNDS_US.len() - 1], 1);
        assert_eq!(h.count(), 2);
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(250)));
    }

    #[test]
    fn a_window_is_the_difference_of_two_snapshots() {
        let r = DelayRecorder::default();
        r.record(Duration::from_micros(10));
        let before = r.snapshot();
        r.record(Duration::from_micros(900));
        r.record(Duration::from_micros(900));
        let w = r.snapshot().since(&before);
        assert_eq!(w.count(), 2);
        assert_eq!(w.sum_us, 1_800);
        assert_eq!(w.cumulative[0], 0);
        assert_eq!(w.quantile(0.5), Some(Duration::from_micros(875)));
    }
}
