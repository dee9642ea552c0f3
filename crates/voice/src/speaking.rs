//! Speaking indicators and the active speaker, from RFC 6464 levels.
//!
//! Each published audio track has a [`LevelMeter`] fed by its forwarder (an exponential
//! average of the level, and when it was last loud); the room's ticker asks
//! [`SpeakerState::tick`] for transitions every 100 ms, so speech ends on time even when
//! the sender stops sending (Opus DTX).

use crate::config::SpeakingConfig;
use crate::types::ParticipantId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One publisher's audio level, written by its forwarder.
#[derive(Default)]
pub(crate) struct LevelMeter {
    inner: Mutex<Meter>,
}

#[derive(Default)]
struct Meter {
    /// Smoothed level in -dBov (lower is louder); starts as silence.
    smoothed: Option<f32>,
    last_loud: Option<Instant>,
}

impl LevelMeter {
    pub(crate) fn observe(&self, level: u8, threshold: u8, now: Instant) {
        let mut m = self.inner.lock();
        let level = f32::from(level);
        let s = match m.smoothed {
            // Attack fast, release slower: speech onsets show at once.
            Some(s) if level < s => s * 0.4 + level * 0.6,
            Some(s) => s * 0.8 + level * 0.2,
            None => level,
        };
        m.smoothed = Some(s);
        if s <= f32::from(threshold) {
            m.last_loud = Some(now);
        }
    }

    /// (speaking, loudness) at `now`.
    fn read(&self, hangover: Duration, now: Instant) -> (bool, f32) {
        let m = self.inner.lock();
        let speaking = m
            .last_loud
            .is_some_and(|t| now.saturating_duration_since(t) < hangover);
        (speaking, 127.0 - m.smoothed.unwrap_or(127.0))
    }
}

/// What the room last announced.
#[derive(Default)]
pub(crate) struct SpeakerState {
    speaking: HashMap<ParticipantId, bool>,
    active: Option<ParticipantId>,
    active_since: Option<Instant>,
}

/// Transitions to announce.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SpeakerChanges {
    pub(crate) speaking: Vec<(ParticipantId, bool)>,
    pub(crate) active: Option<Option<ParticipantId>>,
}

impl SpeakerState {
    pub(crate) fn tick(
        &mut self,
        meters: &[(ParticipantId, &LevelMeter)],
        cfg: &SpeakingConfig,
        now: Instant,
    ) -> SpeakerChanges {
        let mut changes = SpeakerChanges::default();
        let mut loudest: Option<(ParticipantId, f32)> = None;
        for (who, meter) in meters {
            let (speaking, loudness) = meter.read(cfg.hangover, now);
            let was = self.speaking.get(who).copied().unwrap_or(false);
            if speaking != was {
                self.speaking.insert(*who, speaking);
                changes.speaking.push((*who, speaking));
            }
            if speaking && loudest.is_none_or(|(_, l)| loudness > l) {
                loudest = Some((*who, loudness));
            }
        }
        // Forget who is gone (no announcement: their leaving says it).
        self.speaking
            .retain(|who, _| meters.iter().any(|(m, _)| m == who));
        if let Some(gone) = self.active
            && !meters.iter().any(|(m, _)| *m == gone)
        {
            self.active = None;
            changes.active = Some(None);
        }
        if let Some((who, _)) = loudest
            && self.active != Some(who)
        {
            let held = self
                .active_since
                .is_some_and(|t| now.saturating_duration_since(t) < cfg.active_speaker_hold);
            let current_speaks = self
                .active
                .is_some_and(|a| self.speaking.get(&a).copied().unwrap_or(false));
            if !(held && current_speaks) {
                self.active = Some(who);
                self.active_since = Some(now);
                changes.active = Some(Some(who));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loud_then_silent_then_hangover() {
        let cfg = SpeakingConfig::default();
        let t0 = Instant::now();
        let a = LevelMeter::default();
        let b = LevelMeter::default();
        let mut st = SpeakerState::default();
        let pa = ParticipantId(1);
        let pb = ParticipantId(2);
        for i in 0..5 {
            a.observe(10, cfg.threshold, t0 + Duration::from_millis(20 * i));
            b.observe(127, cfg.threshold, t0 + Duration::from_millis(20 * i));
        }
        let c = st.tick(&[(pa, &a), (pb, &b)], &cfg, t0 + Duration::from_millis(100));
        assert_eq!(c.speaking, vec![(pa, true)]);
        assert_eq!(c.active, Some(Some(pa)));
        // Silence packets: the average climbs above the threshold, then the hangover ends.
        for i in 0..30 {
            a.observe(127, cfg.threshold, t0 + Duration::from_millis(120 + 20 * i));
        }
        let c = st.tick(
            &[(pa, &a), (pb, &b)],
            &cfg,
            t0 + Duration::from_millis(1000),
        );
        assert_eq!(c.speaking, vec![(pa, false)]);
        // The active speaker stays until someone else speaks.
        assert_eq!(c.active, None);
    }
}
