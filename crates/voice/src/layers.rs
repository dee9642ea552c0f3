//! Which simulcast layer a subscriber gets: min(what it shows, what its bandwidth allows).
//!
//! Bandwidth comes from an explicit cap ([`crate::Sfu::set_bandwidth_cap`]) and from the
//! send-side estimate (TWCC feedback into GCC, `engine::Estimator`), or REMB without it.
//! There is no padding probe, so the estimate trails what is actually sent and cannot prove
//! that a higher layer fits; it is used to step *down*, and after [`PROBE_AFTER`] without
//! congestion the subscriber steps back up one layer (a probe by trying). A step down right
//! after a probe doubles the wait (up to 60 s).
//!
//! A step down needs the estimate below the forwarded layer's rate *and*, with the send-side
//! estimator, a congestion decision of it since the last look (growing queueing delay, or
//! loss). The estimate alone would undo every probe: the moment a subscriber steps up, the
//! new layer's rate is above an estimate built on the old one (the first cut did exactly
//! that, so a lone spotlight never reached the top layer). With REMB alone (a receiver-side
//! estimate), the estimate below the rate is the signal.

use crate::types::Layer;
use std::time::{Duration, Instant};

pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(8);
const PROBE_MAX: Duration = Duration::from_secs(60);

/// Per (subscriber, video track) congestion state.
#[derive(Debug, Clone)]
pub(crate) struct Congestion {
    /// Highest layer the estimate currently lets through.
    pub(crate) ceiling: Layer,
    since: Instant,
    probed_at: Option<Instant>,
    wait: Duration,
    /// The estimator's congestion count at the last look.
    seen: Option<u64>,
}

impl Congestion {
    pub(crate) fn new(now: Instant) -> Congestion {
        Congestion {
            ceiling: Layer::High,
            since: now,
            probed_at: None,
            wait: PROBE_AFTER,
            seen: None,
        }
    }

    /// Feed the estimate (bits/s, 0 = none yet), the send-side estimator's congestion count
    /// (`None` without one) and the bitrate of the layer being forwarded; returns the ceiling.
    pub(crate) fn update(
        &mut self,
        estimate: u64,
        congestion: Option<u64>,
        current: Layer,
        current_rate: u64,
        now: Instant,
    ) -> Layer {
        let congested = match congestion {
            Some(count) => self.seen.replace(count).is_some_and(|seen| seen != count),
            None => true,
        };
        if congested
            && estimate > 0
            && current_rate > 0
            && estimate < current_rate
            && current > Layer::Low
        {
            let probed_recently = self
                .probed_at
                .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(2));
            self.ceiling = Layer::from_index(current as u8 - 1);
            self.wait = if probed_recently {
                (self.wait * 2).min(PROBE_MAX)
            } else {
                PROBE_AFTER
            };
            self.since = now;
        } else if self.ceiling < Layer::High
            && now.saturating_duration_since(self.since) >= self.wait
        {
            self.ceiling = Layer::from_index(self.ceiling as u8 + 1);
            self.since = now;
            self.probed_at = Some(now);
        }
        self.ceiling
    }
}

/// The layer for a subscriber: the highest available one at or below every limit; if none
/// is at or below, the lowest available.
pub(crate) fn choose(
    available: [bool; 3],
    shown: Layer,
    ceiling: Layer,
    cap: Option<u64>,
    rates: [u64; 3],
) -> Option<Layer> {
    let mut limit = shown.min(ceiling);
    if let Some(cap) = cap {
        let fits = (0..3u8)
            .rev()
            .find(|&i| rates[i as usize] <= cap)
            .unwrap_or(0);
        limit = limit.min(Layer::from_index(fits));
    }
    (0..=limit as u8)
        .rev()
        .map(Layer::from_index)
        .find(|l| available[l.index()])
        .or_else(|| {
            (0..3u8)
                .map(Layer::from_index)
                .find(|l| available[l.index()])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_takes_the_minimum() {
        let rates = [100, 500, 1500];
        let all = [true, true, true];
        assert_eq!(
            choose(all, Layer::High, Layer::High, None, rates),
            Some(Layer::High)
        );
        assert_eq!(
            choose(all, Layer::Low, Layer::High, None, rates),
            Some(Layer::Low)
        );
        assert_eq!(
            choose(all, Layer::High, Layer::Medium, None, rates),
            Some(Layer::Medium)
        );
        assert_eq!(
            choose(all, Layer::High, Layer::High, Some(600), rates),
            Some(Layer::Medium)
        );
        assert_eq!(
            choose(all, Layer::High, Layer::High, Some(10), rates),
            Some(Layer::Low)
        );
        // A missing layer falls back below, then above.
        assert_eq!(
            choose([true, false, false], Layer::High, Layer::High, None, rates),
            Some(Layer::Low)
        );
        assert_eq!(
            choose([false, false, true], Layer::Low, Layer::High, None, rates),
            Some(Layer::High)
        );
        assert_eq!(
            choose([false; 3], Layer::Low, Layer::High, None, rates),
            None
        );
    }

    #[test]
    fn congestion_steps_down_then_probes_up() {
        let t0 = Instant::now();
        let mut c = Congestion::new(t0);
        assert_eq!(c.update(0, None, Layer::High, 1500, t0), Layer::High);
        // A congestion decision with the estimate below the layer: one layer down.
        assert_eq!(c.update(1000, Some(0), Layer::High, 1500, t0), Layer::High);
        assert_eq!(
            c.update(1000, Some(1), Layer::High, 1500, t0),
            Layer::Medium
        );
        assert_eq!(
            c.update(
                1000,
                Some(1),
                Layer::Medium,
                500,
                t0 + Duration::from_secs(1)
            ),
            Layer::Medium
        );
        assert_eq!(
            c.update(1000, Some(1), Layer::Medium, 500, t0 + PROBE_AFTER),
            Layer::High
        );
        // Congested right after the probe: back down, and the next probe waits twice as long.
        let t1 = t0 + PROBE_AFTER + Duration::from_millis(500);
        assert_eq!(
            c.update(1000, Some(2), Layer::High, 1500, t1),
            Layer::Medium
        );
        assert_eq!(
            c.update(1000, Some(2), Layer::Medium, 500, t1 + PROBE_AFTER),
            Layer::Medium
        );
        assert_eq!(
            c.update(1000, Some(2), Layer::Medium, 500, t1 + PROBE_AFTER * 2),
            Layer::High
        );
    }

    #[test]
    fn an_estimate_that_trails_what_is_sent_does_not_undo_a_probe() {
        let t0 = Instant::now();
        let mut c = Congestion::new(t0);
        assert_eq!(c.update(1000, Some(3), Layer::High, 1500, t0), Layer::High);
        assert_eq!(
            c.update(1000, Some(4), Layer::High, 1500, t0),
            Layer::Medium
        );
        let probe = t0 + PROBE_AFTER;
        assert_eq!(
            c.update(700, Some(4), Layer::Medium, 500, probe),
            Layer::High
        );
        // On the top layer the estimate (built while the middle one was sent) is below its
        // rate for seconds, with no congestion: it stays.
        for s in 1..20 {
            let at = probe + Duration::from_millis(500 * s);
            assert_eq!(c.update(750, Some(4), Layer::High, 1500, at), Layer::High);
        }
        // Congestion with the estimate above the layer's rate is someone else's problem.
        assert_eq!(
            c.update(2000, Some(5), Layer::High, 1500, probe + PROBE_AFTER * 2),
            Layer::High
        );
    }

    #[test]
    fn with_remb_alone_the_estimate_below_the_layer_steps_down() {
        let t0 = Instant::now();
        let mut c = Congestion::new(t0);
        assert_eq!(c.update(1000, None, Layer::High, 1500, t0), Layer::Medium);
        assert_eq!(c.update(1000, None, Layer::Medium, 500, t0), Layer::Medium);
    }
}
