//! The SFU's counters and gauges as Prometheus metrics.
//!
//! The SFU counts with atomics on its packet path (`hearth_voice::SfuStats`)
//! and knows nothing of Prometheus; this collector reads those numbers when
//! `/metrics` is scraped, so forwarding never pays for an exporter.

use hearth_voice::{DELAY_BOUNDS_US, DelayHistogram, Sfu, SfuStats};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily};
use prometheus::{IntCounter, IntGauge, Registry};

type Read = fn(&SfuStats) -> u64;

const GAUGES: [(&str, &str, Read); 5] = [
    (
        "hearth_voice_rooms",
        "Voice rooms hosted here with at least one participant",
        |s| s.rooms as u64,
    ),
    (
        "hearth_voice_participants",
        "Participants in the voice rooms hosted here",
        |s| s.participants as u64,
    ),
    (
        "hearth_voice_peer_connections",
        "Open WebRTC peer connections",
        |s| s.peer_connections as u64,
    ),
    (
        "hearth_voice_tasks",
        "Tasks the SFU spawned that are still running",
        |s| s.live_tasks as u64,
    ),
    (
        "hearth_voice_udp_ports_in_use",
        "UDP ports of the configured media range in use",
        |s| s.ports_in_use as u64,
    ),
];

const COUNTERS: [(&str, &str, Read); 8] = [
    (
        "hearth_voice_packets_received_total",
        "RTP packets received from publishers",
        |s| s.packets_received,
    ),
    (
        "hearth_voice_packets_forwarded_total",
        "RTP packets written to subscribers",
        |s| s.packets_forwarded,
    ),
    (
        "hearth_voice_forwarded_bytes_total",
        "RTP payload bytes written to subscribers",
        |s| s.bytes_forwarded,
    ),
    (
        "hearth_voice_packets_dropped_total",
        "RTP packets not written because a subscriber was not ready or its queue was full",
        |s| s.packets_dropped,
    ),
    (
        "hearth_voice_packets_gated_total",
        "RTP packets not forwarded because their publisher may not send them (muted, a permission lost)",
        |s| s.packets_gated,
    ),
    (
        "hearth_voice_keyframe_requests_total",
        "Keyframe requests (PLI) sent to publishers",
        |s| s.keyframe_requests,
    ),
    ("hearth_voice_joins_total", "Joins the SFU accepted", |s| {
        s.joins
    }),
    (
        "hearth_voice_joins_refused_total",
        "Joins the SFU refused",
        |s| s.joins_refused,
    ),
];

const DELAY: (&str, &str) = (
    "hearth_voice_forward_delay_seconds",
    "The SFU's own delay per forwarded media datagram: from the kernel receiving it on the room socket to its last copy being sent",
);

pub struct VoiceMetrics {
    sfu: Sfu,
    gauges: Vec<(IntGauge, Read)>,
    counters: Vec<(IntCounter, Read)>,
    delay: Desc,
}

/// The SFU's delay histogram as a Prometheus one (seconds, cumulative buckets).
fn delay_family(h: &DelayHistogram) -> MetricFamily {
    let mut hist = proto::Histogram::default();
    hist.set_sample_count(h.count());
    hist.set_sample_sum(h.sum_us as f64 / 1e6);
    hist.set_bucket(
        DELAY_BOUNDS_US
            .iter()
            .zip(&h.cumulative)
            .map(|(&us, &count)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(us as f64 / 1e6);
                b.set_cumulative_count(count);
                b
            })
            .collect(),
    );
    let mut m = proto::Metric::default();
    m.set_histogram(hist);
    let mut f = MetricFamily::default();
    f.set_name(DELAY.0.into());
    f.set_help(DELAY.1.into());
    f.set_field_type(proto::MetricType::HISTOGRAM);
    f.set_metric(vec![m]);
    f
}

impl VoiceMetrics {
    /// Registers the SFU's metrics in `registry`.
    pub fn register(sfu: Sfu, registry: &Registry) {
        let gauges = GAUGES
            .iter()
            .map(|&(name, help, read)| {
                let g = IntGauge::new(name, help)
                    .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
                (g, read)
            })
            .collect();
        let counters = COUNTERS
            .iter()
            .map(|&(name, help, read)| {
                let c = IntCounter::new(name, help)
                    .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
                (c, read)
            })
            .collect();
        let delay = Desc::new(
            DELAY.0.into(),
            DELAY.1.into(),
            Vec::new(),
            std::collections::HashMap::new(),
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let me = VoiceMetrics {
            sfu,
            gauges,
            counters,
            delay,
        };
        if let Err(e) = registry.register(Box::new(me)) {
            tracing::warn!(error = %e, "registering the voice metrics");
        }
    }
}

impl Collector for VoiceMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let gauges = self.gauges.iter().flat_map(|(g, _)| g.desc());
        gauges
            .chain(self.counters.iter().flat_map(|(c, _)| c.desc()))
            .chain(std::iter::once(&self.delay))
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.sfu.stats();
        for (g, read) in &self.gauges {
            g.set(i64::try_from(read(&stats)).unwrap_or(i64::MAX));
        }
        // The SFU's counters only grow, so each exported counter catches up
        // with its source (a Prometheus counter cannot be set).
        for (c, read) in &self.counters {
            let now = read(&stats);
            if now > c.get() {
                c.inc_by(now - c.get());
            }
        }
        let gauges = self.gauges.iter().flat_map(|(g, _)| g.collect());
        gauges
            .chain(self.counters.iter().flat_map(|(c, _)| c.collect()))
            .chain(std::iter::once(delay_family(&stats.forward_delay)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_sfu_exports_every_metric() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _guard = rt.enter();
        let sfu = Sfu::new(hearth_voice::VoiceConfig::default()).expect("an SFU");
        let registry = Registry::new();
        VoiceMetrics::register(sfu, &registry);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        for (name, _, _) in GAUGES.iter().chain(COUNTERS.iter()) {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        assert!(names.iter().any(|n| n == DELAY.0), "{names:?}");
        // The exposition format takes the hand-built histogram.
        let mut text = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut text,
        )
        .expect("encodes");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(
            text.contains("hearth_voice_forward_delay_seconds_bucket{le=\"0.005\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("hearth_voice_forward_delay_seconds_count 0"),
            "{text}"
        );
        let rooms = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == "hearth_voice_rooms")
            .expect("the rooms gauge");
        assert_eq!(rooms.get_metric()[0].get_gauge().get_value(), 0.0);
    }
}
