//! The crate's one error enum. The server maps each variant to a gateway close code or
//! error once, at its edge.

use crate::types::TrackKind;

/// Why an SFU operation was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VoiceError {
    /// The room has as many participants as its limit.
    #[error("the room is full")]
    RoomFull,
    /// The grants do not include CONNECT.
    #[error("not permitted to join")]
    NotPermitted,
    /// The SDP is over the configured size limit.
    #[error("SDP of {size} bytes is over the {limit}-byte limit")]
    SdpTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The SDP does not parse, or is not a usable offer/answer.
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The offer sends more tracks of a kind than allowed.
    #[error("too many {kind:?} tracks: {count} over the limit of {limit}")]
    TooManyTracks {
        /// Which kind (video counts camera and screen together, checked as `Camera`).
        kind: TrackKind,
        /// How many were offered.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An answer arrived with no SFU offer outstanding (a stale answer; harmless).
    #[error("no offer is outstanding")]
    NoPendingOffer,
    /// The ICE candidate was refused.
    #[error("bad ICE candidate: {0}")]
    BadCandidate(String),
    /// Signals arrived faster than the limit; the participant was closed.
    #[error("signalling flood")]
    SignalFlood,
    /// No UDP port of the configured range is free.
    #[error("no UDP port free in the configured range")]
    NoPorts,
    /// The participant is not (or no longer) in a room.
    #[error("not in a room")]
    NotInRoom,
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}
