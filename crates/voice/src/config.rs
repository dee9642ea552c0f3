//! The SFU's configuration: one struct, validated once by [`crate::Sfu::new`].

use std::net::IpAddr;
use std::time::Duration;

/// Where and how the SFU listens, and its limits.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// Addresses to bind each room's UDP socket on (one socket per address); their host
    /// candidates are these addresses. Loopback works (tests use `127.0.0.1`).
    pub host_addresses: Vec<IpAddr>,
    /// Public addresses announced instead of the bound ones (1:1 NAT): `public_ips[i]`
    /// for `host_addresses[i]` (the last one for the rest), or empty.
    pub public_ips: Vec<IpAddr>,
    /// Inclusive UDP port range; `None` lets the OS choose. One port per room.
    pub udp_ports: Option<(u16, u16)>,
    /// TURN (coturn, shared secret) handed to clients with the join answer.
    pub turn: Option<TurnConfig>,
    /// Limits.
    pub limits: Limits,
    /// Send-side bandwidth estimation (TWCC) per subscriber: a falling estimate moves
    /// subscribers to lower simulcast layers.
    pub bandwidth_estimation: bool,
    /// The bitrate each simulcast layer needs (bits/s) before any is measured, low first.
    pub layer_bitrates: [u64; 3],
    /// Speaking detection.
    pub speaking: SpeakingConfig,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            host_addresses: vec![IpAddr::from([127, 0, 0, 1])],
            public_ips: Vec::new(),
            udp_ports: None,
            turn: None,
            limits: Limits::default(),
            bandwidth_estimation: true,
            layer_bitrates: [150_000, 500_000, 1_500_000],
            speaking: SpeakingConfig::default(),
        }
    }
}

/// coturn with `use-auth-secret`.
#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:turn.example.org:3478?transport=udp`, `turns:…:5349?transport=tcp`, …
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: Vec<u8>,
    /// How long handed-out credentials stay valid.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// What one participant, one room and one signalling stream may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Audio tracks a participant may publish.
    pub max_audio_tracks: usize,
    /// Video tracks (camera + screen) a participant may publish.
    pub max_video_tracks: usize,
    /// Participants per room when the join names no user limit.
    pub default_max_participants: usize,
    /// Largest SDP accepted, in bytes.
    pub max_sdp_bytes: usize,
    /// A participant whose connection is not up this long after joining is removed.
    pub ice_connect_timeout: Duration,
    /// Signals per second a participant may send, sustained.
    pub signals_per_sec: u32,
    /// Signals a participant may send in a burst.
    pub signal_burst: u32,
    /// Events queued for a participant's consumer before it is closed as not reading
    /// (speaking events are dropped instead).
    pub event_queue: usize,
    /// At most one keyframe request per publisher layer this often while the last is
    /// unanswered (once a keyframe has answered it, the next may go 100 ms after it).
    pub pli_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_audio_tracks: 1,
            max_video_tracks: 2,
            default_max_participants: 99,
            max_sdp_bytes: 64 * 1024,
            ice_connect_timeout: Duration::from_secs(10),
            signals_per_sec: 50,
            signal_burst: 200,
            event_queue: 1024,
            pli_interval: Duration::from_millis(500),
        }
    }
}

/// Speaking detection over RFC 6464 levels (0 = loudest, 127 = silence, in -dBov).
#[derive(Debug, Clone)]
pub struct SpeakingConfig {
    /// A smoothed level at or below this is speech.
    pub threshold: u8,
    /// Speech ends after this long without a loud packet (DTX sends none while silent).
    pub hangover: Duration,
    /// The active speaker changes at most this often.
    pub active_speaker_hold: Duration,
}

impl Default for SpeakingConfig {
    fn default() -> Self {
        SpeakingConfig {
            threshold: 50,
            hangover: Duration::from_millis(400),
            active_speaker_hold: Duration::from_millis(800),
        }
    }
}
