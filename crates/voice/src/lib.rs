//! # hearth-voice
//!
//! The voice and video selective forwarding unit (SFU), on str0m 0.23 (sans-I/O; pure-Rust
//! crypto, no C build). Why str0m rather than webrtc-rs: `ARCHITECTURE.md`, "The stack".
//!
//! See `ARCHITECTURE.md` for the crate's place.
//!
//! ## Signalling, step by step
//!
//! 1. The server calls [`Sfu::join`] with the room, the user, the session, its [`Grants`]
//!    and the channel's user limit. It gets a [`Participant`], an event receiver and the ICE
//!    servers (TURN with short-lived REST credentials) to hand to the client.
//! 2. The client makes an `RTCPeerConnection` with those ICE servers and **makes the first
//!    offer**: one `addTransceiver(track, {direction: "sendonly"})` per publication (camera
//!    with `sendEncodings` of three rids for simulcast, e.g. `q`/`h`/`f` low→high), or, to
//!    only listen, `addTransceiver("audio", {direction: "recvonly"})` and the same for
//!    `"video"` (those placeholders are answered `inactive`: the SFU sends on m-sections it
//!    offers itself). After
//!    `setLocalDescription` it sends [`Signal::Offer`] with the SDP and a [`TrackLabel`]
//!    per sending transceiver (`transceiver.mid` → camera or screen).
//! 3. The SFU answers ([`SfuEvent::Answer`]); both sides trickle candidates
//!    ([`SfuEvent::Candidate`] / [`Signal::Candidate`]).
//! 4. Whenever others' tracks appear or go, the SFU sends [`SfuEvent::TrackPublished`] /
//!    [`SfuEvent::TrackUnpublished`] and then an [`SfuEvent::Offer`]; the client answers
//!    with [`Signal::Answer`]. The `ontrack` event's `streams[0].id` is the stream id
//!    `TrackPublished` named (`<participant>` for microphone and camera, in one stream so
//!    they play in sync; `<participant>-screen` for the screen).
//! 5. To publish more (screen share) or stop, the client renegotiates with a new offer as
//!    in step 2. If an SFU offer is outstanding at that moment (glare), the client — the
//!    impolite peer — ignores the SFU's offer; the SFU drops it, answers, and offers again.
//!    A browser using the "perfect negotiation" pattern with `polite = false` does exactly
//!    this.
//! 6. The last event is [`SfuEvent::Left`] with the reason. Dropping the [`Participant`]
//!    leaves.
//!
//! Hand a participant's signals over in the order they arrived, awaiting each
//! [`Participant::signal`] (a candidate before its offer is refused). Errors from `signal`
//! leave the session as it was (`MalformedSdp`, `SdpTooLarge`, `TooManyTracks`,
//! `NoPendingOffer`, `BadCandidate`), except `SignalFlood`, which closes it.
//!
//! ## Invariants
//!
//! - One task per room owns the room's socket(s) and every participant's `Rtc`; everything
//!   done to a connection goes through that task's queue, so negotiation steps never
//!   interleave and forwarding needs no lock.
//! - The packet path takes no SFU-wide lock: the room task reads the members' atomics
//!   (grants, mutes, deafen, layers, estimate).
//! - Every task the crate spawns is counted ([`SfuStats::live_tasks`]); a participant's
//!   connection is gone once its `Left` event is sent, and its room's task and port once
//!   the room is empty.
//!
//! ## Deviations from the brief
//!
//! - str0m instead of webrtc-rs (measured; `ARCHITECTURE.md`).
//! - The SFU answers a client's first offer as the DTLS client (`a=setup:active`).
//! - Per subscriber the SFU rewrites sequence numbers and timestamps (continuous across
//!   simulcast layer switches) and writes the payload type the subscriber negotiated for the
//!   publisher's codec; header extensions are str0m's own, with the audio level carried over.
//! - The bandwidth estimate (TWCC, str0m's estimator) is used to step layers down when it
//!   falls and to probe back up on a timer (`layers.rs`). [`Sfu::set_bandwidth_cap`] is
//!   the explicit knob. Forwarded media is not paced.
//! - [`Grants`] has `connect` too, so losing CONNECT at runtime kicks.
//! - One UDP port per room (per host address), not per participant.
//! - A subscriber receives a video codec only if its connection negotiated it; browsers
//!   offer all their codecs, so in practice VP8 and H.264 publishers mix; there is no
//!   transcoding.
//! - Removed tracks' m-sections are stopped (port 0) in the SFU's next offer.
//! - A client whose checks carry the SFU's credentials is connected even if the password
//!   in its own SDP is wrong (str0m keeps a pair its peer keeps checking).

mod codec;
mod config;
mod conn;
mod delay;
mod engine;
mod error;
mod layers;
pub mod peer;
mod ports;
mod room;
mod sdp;
mod sfu;
mod speaking;
mod tasks;
mod track;
mod turn;
mod types;

pub use config::{Limits, SpeakingConfig, TurnConfig, VoiceConfig};
pub use delay::{DELAY_BOUNDS_US, DelayHistogram};
pub use error::VoiceError;
pub use sfu::{JoinRequest, Joined, Participant, Sfu, SfuStats};
pub use turn::{TurnCredentials, turn_credentials, turn_password};
pub use types::{
    Grants, IceCandidate, IceServer, Layer, LeaveReason, ParticipantId, RoomKey, SessionTag,
    SfuEvent, Signal, TrackKind, TrackLabel,
};
