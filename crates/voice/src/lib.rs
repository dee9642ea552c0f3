//! # hearth-voice
//!
//! The voice and video selective forwarding unit (SFU), on webrtc-rs 0.21 (the async layer
//! over the sans-I/O `rtc` core; ring crypto, no OpenSSL).
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
//!    `"video"` (so the first exchange settles every codec the browser has: webrtc-rs fixes
//!    a connection's codec list at its first exchange of each kind). After
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
//!    impolite peer — ignores the SFU's offer; the SFU rolls back, answers, and offers again.
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
//! - One task per participant owns its peer connection; everything done to it goes through
//!   that task's queue, so negotiation steps never interleave.
//! - The packet path takes no SFU-wide lock: a forwarder reads its subscriber list (an
//!   `Arc` swapped on change) and the members' atomics (grants, mutes, deafen, layers).
//! - Every task the crate spawns is counted ([`SfuStats::live_tasks`]); a participant's
//!   tasks, port and peer connection are gone once its `Left` event is sent.
//!
//! ## Deviations from the brief
//!
//! - webrtc-rs 0.21's `TrackLocalStaticRTP` does not rewrite SSRC or payload type, so the
//!   forwarder does (per subscriber, from the negotiated sender parameters), and strips the
//!   publisher's header extensions (their ids are the publisher's), re-adding the audio
//!   level under the subscriber's id.
//! - Inbound RTCP stops at the end of webrtc-rs's interceptor chain; a small interceptor
//!   (`engine::FeedbackToApp`) hands PLI/FIR/REMB on to the forwarders.
//! - The bandwidth estimate (TWCC → GCC) is used to step layers down under congestion and
//!   to probe back up on a timer (`layers.rs`); without padding probes GCC cannot show that
//!   a higher layer would fit. [`Sfu::set_bandwidth_cap`] is the explicit knob.
//! - [`Grants`] has `connect` too, so losing CONNECT at runtime kicks.
//! - webrtc-rs 0.21 keeps `SettingEngine::with_nat_1to1_ips` but nothing reads it; the
//!   session rewrites its host candidates (trickled and in SDP) to the public addresses.
//! - Each peer connection binds its own UDP socket (no UDP mux in webrtc-rs 0.21): one port
//!   of the range per participant, returned when it leaves.
//! - A subscriber receives a video codec only if its connection negotiated it (webrtc-rs
//!   fixes the codec list at the first exchange); browsers offer all their codecs, so in
//!   practice VP8 and H.264 publishers mix; there is no transcoding.
//! - m-sections of removed tracks are not reused: the SDP grows by one (inactive) section
//!   per track a subscriber ever received in the session.

mod codec;
mod config;
mod conn;
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
pub use error::VoiceError;
pub use sfu::{JoinRequest, Joined, Participant, Sfu, SfuStats};
pub use turn::{TurnCredentials, turn_credentials, turn_password};
pub use types::{
    Grants, IceCandidate, IceServer, Layer, LeaveReason, ParticipantId, RoomKey, SessionTag,
    SfuEvent, Signal, TrackKind, TrackLabel,
};
