//! The crate's vocabulary: ids, grants, signalling values in both directions.
//!
//! Plain values with serde derives, so the server can put them on its wire with one
//! conversion at the edge (or as they are). Nothing here knows HTTP or the gateway.

use serde::{Deserialize, Serialize};

/// A voice room: the voice channel's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomKey(pub u64);

/// A participant: the user's id. A user is in at most one room of an SFU at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParticipantId(pub u64);

/// Which gateway session a participant joined from (opaque to the SFU; echoed in stats and
/// logs, and used to tell a replacing join from the same session).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionTag(pub String);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a participant may do, decided by the domain layer (channel permissions) and
/// changeable at runtime with [`crate::Sfu::set_grants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// May be in the room at all (CONNECT). Losing it at runtime kicks.
    pub connect: bool,
    /// May publish audio (SPEAK). Losing it stops forwarding their audio at once.
    pub speak: bool,
    /// May publish camera and screen (VIDEO / STREAM).
    pub video: bool,
}

impl Grants {
    /// Everything.
    pub const ALL: Grants = Grants {
        connect: true,
        speak: true,
        video: true,
    };
    /// Listen only.
    pub const LISTEN: Grants = Grants {
        connect: true,
        speak: false,
        video: false,
    };
}

/// What a published track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// The microphone.
    Audio,
    /// The camera (may be simulcast).
    Camera,
    /// Screen share, its own track (may be simulcast).
    Screen,
}

impl TrackKind {
    /// The name used in track ids (`<participant>-<kind>-<n>`).
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Camera => "camera",
            TrackKind::Screen => "screen",
        }
    }

    /// Audio or video.
    pub fn is_audio(self) -> bool {
        self == TrackKind::Audio
    }
}

/// A simulcast layer, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Thumbnail quality (rid `q`, `l`, `low` or `0`).
    Low = 0,
    /// Medium (rid `h` when `f` exists, `m`, `mid` or `1`).
    Medium = 1,
    /// Full (rid `f`, `h` when no `f` exists, `high` or `2`).
    High = 2,
}

impl Layer {
    /// From its index (0, 1, 2); larger values saturate to `High`.
    pub fn from_index(i: u8) -> Layer {
        match i {
            0 => Layer::Low,
            1 => Layer::Medium,
            _ => Layer::High,
        }
    }

    /// Its index (0, 1, 2).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An ICE candidate as the browser's `RTCIceCandidateInit` has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute; empty means end of candidates.
    pub candidate: String,
    /// The m-section's mid.
    pub sdp_mid: Option<String>,
    /// The m-section's index.
    pub sdp_mline_index: Option<u16>,
    /// The ICE username fragment.
    pub username_fragment: Option<String>,
}

/// Says which of the offer's sending m-sections is which track (by mid, as the browser's
/// `transceiver.mid` has it after `setLocalDescription(offer)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackLabel {
    /// The m-section's mid.
    pub mid: String,
    /// What it carries.
    pub kind: TrackKind,
}

/// Client → SFU signalling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Signal {
    /// An offer from the client (its publications, or any renegotiation it starts).
    /// `tracks` labels its sending m-sections; unlabelled ones default to audio → `Audio`,
    /// first video → `Camera`, second video → `Screen`.
    Offer {
        /// The SDP.
        sdp: String,
        /// Labels for its sending m-sections.
        #[serde(default)]
        tracks: Vec<TrackLabel>,
    },
    /// The client's answer to an [`SfuEvent::Offer`].
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate from the client.
    Candidate(IceCandidate),
}

/// Why a participant left the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum LeaveReason {
    /// It left (the handle was dropped or `leave` called).
    Left,
    /// The server kicked it (or it lost CONNECT).
    Kicked {
        /// Shown to the user.
        message: String,
    },
    /// The connection (ICE, then DTLS) was not up within the configured timeout: a client
    /// that never connects, wrong ICE credentials, a DTLS handshake that fails.
    IceTimeout,
    /// ICE or DTLS failed after connecting, or the connection closed.
    ConnectionFailed,
    /// Too many signals too fast.
    SignalFlood,
    /// The same user joined again (another room or session).
    Replaced,
    /// Its event queue was full: the consumer is not reading.
    EventQueueFull,
    /// The SFU shut down.
    Shutdown,
}

/// SFU → client events, delivered on the participant's event receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SfuEvent {
    /// An offer from the SFU (new or removed subscribed tracks); answer with
    /// [`Signal::Answer`]. An impolite client ignores it while its own offer is pending:
    /// the SFU rolls back and offers again afterwards.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// The SFU's answer to a [`Signal::Offer`].
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate of the SFU.
    Candidate(IceCandidate),
    /// Someone in the room started or stopped speaking (RFC 6464 levels, smoothed).
    Speaking {
        /// Who.
        participant: ParticipantId,
        /// Whether they speak now.
        speaking: bool,
    },
    /// The room's active (loudest recent) speaker changed.
    ActiveSpeaker {
        /// Who, or nobody.
        participant: Option<ParticipantId>,
    },
    /// A track is available in the room; the subscriber sees it with this stream and track
    /// id (`a=msid:<stream_id> <track_id>`). Browsers show the stream id as
    /// `ontrack`'s `streams[0].id`: `<participant>` for microphone and camera (one stream,
    /// so they play in sync), `<participant>-screen` for the screen; with the track's kind
    /// that names the track. (A browser's `track.id` is its own, not the msid's.)
    TrackPublished {
        /// Its publisher.
        participant: ParticipantId,
        /// What it is.
        kind: TrackKind,
        /// The msid stream id (`<publisher>` or `<publisher>-screen`).
        stream_id: String,
        /// The msid track id.
        track_id: String,
    },
    /// A track went away (its m-section goes inactive in the next SFU offer).
    TrackUnpublished {
        /// Its publisher.
        participant: ParticipantId,
        /// What it was.
        kind: TrackKind,
        /// The msid track id it had.
        track_id: String,
    },
    /// Another participant joined the room.
    ParticipantJoined {
        /// Who.
        participant: ParticipantId,
    },
    /// Another participant left the room.
    ParticipantLeft {
        /// Who.
        participant: ParticipantId,
    },
    /// This participant is out of the room; the last event.
    Left(LeaveReason),
}

/// A STUN/TURN server for the client's `RTCPeerConnection` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:host:3478?transport=udp`, …
    pub urls: Vec<String>,
    /// The TURN REST username (`<expiry>:<user id>`).
    pub username: String,
    /// The TURN REST password (base64 HMAC-SHA1).
    pub credential: String,
}
