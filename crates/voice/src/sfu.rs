//! The SFU: rooms, their members and published tracks, and the operations the server calls.
//!
//! One lock (`State`) holds the membership of every room; it is taken for joins, leaves and
//! admin operations, never on the packet path. Everything else about a room (connections,
//! tracks, subscriptions) belongs to its loop (`room.rs`), which reads the members' atomics
//! (grants, mutes, deafen, layers, estimate) as packets pass.

use crate::config::VoiceConfig;
use crate::delay::DelayHistogram;
use crate::error::VoiceError;
use crate::ports::Ports;
use crate::room::{self, Command};
use crate::speaking::LevelMeter;
use crate::tasks::Tasks;
use crate::turn::turn_credentials;
use crate::types::{
    Grants, IceServer, Layer, LeaveReason, ParticipantId, RoomKey, SessionTag, SfuEvent, Signal,
    TrackKind,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use str0m::config::CryptoProvider;
use tokio::sync::{mpsc, oneshot};

/// The selective forwarding unit. Cheap to clone; call [`Sfu::shutdown`] to end every call.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<SfuInner>,
}

pub(crate) struct SfuInner {
    pub(crate) cfg: VoiceConfig,
    pub(crate) tasks: Tasks,
    pub(crate) ports: Ports,
    pub(crate) stats: Counters,
    /// DTLS and SRTP for every connection (pure Rust: no C build).
    pub(crate) crypto: Arc<CryptoProvider>,
    state: Mutex<State>,
    next_id: AtomicU64,
    me: Weak<SfuInner>,
}

#[derive(Default)]
struct State {
    rooms: HashMap<RoomKey, RoomState>,
    members: HashMap<ParticipantId, Arc<Member>>,
}

struct RoomState {
    serial: u64,
    members: Vec<Arc<Member>>,
    /// The room loop's queue.
    cmd: mpsc::UnboundedSender<Command>,
}

/// Counters for metrics; gauges are computed in [`Sfu::stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) packets_received: AtomicU64,
    pub(crate) packets_forwarded: AtomicU64,
    pub(crate) bytes_forwarded: AtomicU64,
    pub(crate) packets_dropped: AtomicU64,
    pub(crate) packets_gated: AtomicU64,
    pub(crate) keyframe_requests: AtomicU64,
    pub(crate) joins: AtomicU64,
    pub(crate) joins_refused: AtomicU64,
    pub(crate) peer_connections: AtomicUsize,
    pub(crate) forward_delay: crate::delay::DelayRecorder,
}

/// A snapshot of the SFU's counters and gauges (for Prometheus at the edge).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Rooms with at least one participant.
    pub rooms: usize,
    /// Participants in rooms.
    pub participants: usize,
    /// Open peer connections.
    pub peer_connections: usize,
    /// Tasks the SFU spawned that are still running.
    pub live_tasks: usize,
    /// UDP ports in use (one per room: its loop's socket).
    pub ports_in_use: usize,
    /// RTP packets received from publishers.
    pub packets_received: u64,
    /// RTP packets written to subscribers.
    pub packets_forwarded: u64,
    /// Payload bytes written to subscribers.
    pub bytes_forwarded: u64,
    /// Packets not written because a subscriber's queue was full or it was not ready.
    pub packets_dropped: u64,
    /// Packets not forwarded because the publisher may not send them (mute, lost grant).
    pub packets_gated: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Joins accepted.
    pub joins: u64,
    /// Joins refused.
    pub joins_refused: u64,
    /// The SFU's own delay per forwarded datagram: kernel arrival → last copy sent.
    pub forward_delay: DelayHistogram,
}

/// A participant as the rest of the SFU sees it: its permissions and flags (atomics read on
/// the packet path), its event queue and its room loop's command queue.
pub(crate) struct Member {
    pub(crate) id: ParticipantId,
    /// Unique per join (the same user may join again while its old self is leaving).
    pub(crate) serial: u64,
    pub(crate) room: RoomKey,
    pub(crate) session: SessionTag,
    connect: AtomicBool,
    speak: AtomicBool,
    video: AtomicBool,
    server_mute: AtomicBool,
    self_mute: AtomicBool,
    server_deaf: AtomicBool,
    self_deaf: AtomicBool,
    pub(crate) events: EventSink,
    pub(crate) cmd: mpsc::UnboundedSender<Command>,
    /// The send-side estimate, written by the room loop from str0m's estimator.
    pub(crate) downlink: crate::engine::Downlink,
    remb: AtomicU64,
    cap: AtomicU64,
    pub(crate) shows: Mutex<HashMap<ParticipantId, Layer>>,
    pub(crate) meter: LevelMeter,
}

impl Member {
    /// A member with every grant and nobody reading its events, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(id: u64) -> Member {
        let (tx, _) = mpsc::channel(16);
        let (cmd, _) = mpsc::unbounded_channel();
        Member {
            id: ParticipantId(id),
            serial: id,
            room: RoomKey(1),
            session: SessionTag(String::new()),
            connect: AtomicBool::new(true),
            speak: AtomicBool::new(true),
            video: AtomicBool::new(true),
            server_mute: AtomicBool::new(false),
            self_mute: AtomicBool::new(false),
            server_deaf: AtomicBool::new(false),
            self_deaf: AtomicBool::new(false),
            events: EventSink {
                tx,
                cmd: cmd.clone(),
                serial: id,
            },
            cmd,
            downlink: crate::engine::Downlink::default(),
            remb: AtomicU64::new(0),
            cap: AtomicU64::new(0),
            shows: Mutex::new(HashMap::new()),
            meter: LevelMeter::default(),
        }
    }

    pub(crate) fn may_forward(&self, kind: TrackKind) -> bool {
        if !self.connect.load(Ordering::Relaxed) {
            return false;
        }
        match kind {
            TrackKind::Audio => {
                self.speak.load(Ordering::Relaxed)
                    && !self.server_mute.load(Ordering::Relaxed)
                    && !self.self_mute.load(Ordering::Relaxed)
            }
            TrackKind::Camera | TrackKind::Screen => self.video.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn is_deaf(&self) -> bool {
        self.server_deaf.load(Ordering::Relaxed) || self.self_deaf.load(Ordering::Relaxed)
    }

    /// The best estimate of this subscriber's downlink (bits/s), 0 when none.
    pub(crate) fn estimate(&self) -> u64 {
        let gcc = self.downlink.target.load(Ordering::Relaxed);
        let remb = self.remb.load(Ordering::Relaxed);
        match (gcc, remb) {
            (0, r) => r,
            (g, 0) => g,
            (g, r) => g.min(r),
        }
    }

    /// How many congestion decisions the send-side estimator has made (they only grow), or
    /// `None` without one (estimation off, no TWCC feedback yet: only REMB, if anything).
    pub(crate) fn congestion(&self) -> Option<u64> {
        (self.downlink.target.load(Ordering::Relaxed) > 0)
            .then(|| self.downlink.congestion.load(Ordering::Acquire))
    }

    pub(crate) fn note_remb(&self, bps: u64) {
        self.remb.store(bps, Ordering::Relaxed);
    }

    pub(crate) fn bandwidth_cap(&self) -> Option<u64> {
        match self.cap.load(Ordering::Relaxed) {
            0 => None,
            c => Some(c),
        }
    }

    pub(crate) fn shown_layer(&self, publisher: ParticipantId) -> Layer {
        self.shows
            .lock()
            .get(&publisher)
            .copied()
            .unwrap_or(Layer::High)
    }

    fn set_grants(&self, g: Grants) {
        self.connect.store(g.connect, Ordering::Relaxed);
        self.speak.store(g.speak, Ordering::Relaxed);
        self.video.store(g.video, Ordering::Relaxed);
    }

    pub(crate) fn close(&self, reason: LeaveReason) {
        let _ = self.cmd.send(Command::Close(self.serial, reason));
    }
}

/// A participant's outgoing events: a bounded queue. When it is full, speaking events are
/// dropped; anything else closes the participant (its consumer is not reading).
pub(crate) struct EventSink {
    tx: mpsc::Sender<SfuEvent>,
    cmd: mpsc::UnboundedSender<Command>,
    serial: u64,
}

impl EventSink {
    pub(crate) fn send(&self, ev: SfuEvent) {
        match self.tx.try_send(ev) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                if !matches!(
                    ev,
                    SfuEvent::Speaking { .. } | SfuEvent::ActiveSpeaker { .. }
                ) {
                    let _ = self
                        .cmd
                        .send(Command::Close(self.serial, LeaveReason::EventQueueFull));
                }
            }
        }
    }
}

/// Who joins where.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The voice channel.
    pub room: RoomKey,
    /// The user.
    pub participant: ParticipantId,
    /// The gateway session joining.
    pub session: SessionTag,
    /// What the user may do there.
    pub grants: Grants,
    /// The channel's user limit (`None`: the configured default).
    pub user_limit: Option<usize>,
}

/// What a join hands back: the handle, the event stream, and the ICE servers (with
/// short-lived TURN credentials) for the client's `RTCPeerConnection`.
pub struct Joined {
    /// The handle; dropping it leaves the room.
    pub participant: Participant,
    /// SFU → client events, ending with [`SfuEvent::Left`].
    pub events: mpsc::Receiver<SfuEvent>,
    /// STUN/TURN servers for the client.
    pub ice_servers: Vec<IceServer>,
}

/// A participant in a room. Dropping it leaves the room.
pub struct Participant {
    sfu: Arc<SfuInner>,
    member: Arc<Member>,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Participant {
    /// The user.
    pub fn id(&self) -> ParticipantId {
        self.member.id
    }

    /// The room.
    pub fn room(&self) -> RoomKey {
        self.member.room
    }

    /// Hands a client signal to the participant's session and waits for it to be applied.
    /// SDP and candidate errors leave the session as it was; a flood closes it.
    pub async fn signal(&self, signal: Signal) -> Result<(), VoiceError> {
        if !self.take_token() {
            self.member.close(LeaveReason::SignalFlood);
            return Err(VoiceError::SignalFlood);
        }
        let (tx, rx) = oneshot::channel();
        self.member
            .cmd
            .send(Command::Signal(self.member.serial, signal, tx))
            .map_err(|_| VoiceError::NotInRoom)?;
        rx.await.unwrap_or(Err(VoiceError::NotInRoom))
    }

    fn take_token(&self) -> bool {
        let limits = &self.sfu.cfg.limits;
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let refill =
            now.saturating_duration_since(b.at).as_secs_f64() * f64::from(limits.signals_per_sec);
        b.tokens = (b.tokens + refill).min(f64::from(limits.signal_burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Leaves the room (the same as dropping the handle).
    pub fn leave(self) {}
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.member.close(LeaveReason::Left);
    }
}

impl Sfu {
    /// An SFU with this configuration (checked here).
    pub fn new(cfg: VoiceConfig) -> Result<Sfu, VoiceError> {
        if cfg.host_addresses.is_empty() {
            return Err(VoiceError::Config("no host address".into()));
        }
        if let Some((lo, hi)) = cfg.udp_ports
            && (lo == 0 || lo > hi)
        {
            return Err(VoiceError::Config(format!("bad UDP port range {lo}-{hi}")));
        }
        if let Some(turn) = &cfg.turn
            && (turn.urls.is_empty() || turn.secret.is_empty())
        {
            return Err(VoiceError::Config("TURN needs urls and a secret".into()));
        }
        let ports = Ports::new(cfg.udp_ports);
        Ok(Sfu {
            inner: Arc::new_cyclic(|me| SfuInner {
                cfg,
                tasks: Tasks::default(),
                ports,
                stats: Counters::default(),
                crypto: Arc::new(str0m::crypto::from_feature_flags()),
                state: Mutex::new(State::default()),
                next_id: AtomicU64::new(1),
                me: me.clone(),
            }),
        })
    }

    /// Joins a room: checks the grants and the room's limit, replaces the user's previous
    /// participation (any room), and hands the participant to its room's loop, which makes
    /// its connection. The client then sends its first offer (see the crate docs).
    pub async fn join(&self, req: JoinRequest) -> Result<Joined, VoiceError> {
        let sfu = &self.inner;
        match sfu.admit(req) {
            Ok((member, events)) => {
                sfu.stats.joins.fetch_add(1, Ordering::Relaxed);
                let ice_servers = sfu.ice_servers(member.id);
                Ok(Joined {
                    participant: Participant {
                        sfu: sfu.clone(),
                        member,
                        bucket: Mutex::new(Bucket {
                            tokens: f64::from(sfu.cfg.limits.signal_burst),
                            at: Instant::now(),
                        }),
                    },
                    events,
                    ice_servers,
                })
            }
            Err(e) => {
                sfu.stats.joins_refused.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Changes a participant's grants. Losing SPEAK or VIDEO stops forwarding at once (the
    /// room loop drops the packets; no renegotiation); losing CONNECT kicks.
    pub fn set_grants(&self, participant: ParticipantId, grants: Grants) -> Result<(), VoiceError> {
        let m = self.inner.member(participant)?;
        m.set_grants(grants);
        if !grants.connect {
            m.close(LeaveReason::Kicked {
                message: "no longer permitted to connect".into(),
            });
        }
        Ok(())
    }

    /// Closes a participant's connection and frees everything it held.
    pub fn kick(&self, participant: ParticipantId, message: &str) -> Result<(), VoiceError> {
        self.inner.member(participant)?.close(LeaveReason::Kicked {
            message: message.to_owned(),
        });
        Ok(())
    }

    /// Server mute: nobody receives their audio while set.
    pub fn set_server_mute(&self, participant: ParticipantId, on: bool) -> Result<(), VoiceError> {
        self.inner
            .member(participant)?
            .server_mute
            .store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Server deafen: they receive no audio while set.
    pub fn set_deaf(&self, participant: ParticipantId, on: bool) -> Result<(), VoiceError> {
        self.inner
            .member(participant)?
            .server_deaf
            .store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Self mute (the client's own flag): their audio is not forwarded while set.
    pub fn set_self_mute(&self, participant: ParticipantId, on: bool) -> Result<(), VoiceError> {
        self.inner
            .member(participant)?
            .self_mute
            .store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Self deafen: they receive no audio while set.
    pub fn set_self_deaf(&self, participant: ParticipantId, on: bool) -> Result<(), VoiceError> {
        self.inner
            .member(participant)?
            .self_deaf
            .store(on, Ordering::Relaxed);
        Ok(())
    }

    /// The highest simulcast layer `subscriber` should get of `publisher`'s video (what it
    /// shows: `Low` for a thumbnail, `High` for a spotlight). Default `High`.
    pub fn set_max_layer(
        &self,
        subscriber: ParticipantId,
        publisher: ParticipantId,
        layer: Layer,
    ) -> Result<(), VoiceError> {
        self.inner
            .member(subscriber)?
            .shows
            .lock()
            .insert(publisher, layer);
        Ok(())
    }

    /// Caps the bandwidth assumed for a subscriber (bits/s); layers whose bitrate is above
    /// it are not sent. `None` removes the cap.
    pub fn set_bandwidth_cap(
        &self,
        subscriber: ParticipantId,
        bps: Option<u64>,
    ) -> Result<(), VoiceError> {
        self.inner
            .member(subscriber)?
            .cap
            .store(bps.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    /// The current downlink estimate for a subscriber (bits/s; TWCC + GCC, or REMB), if
    /// any feedback has arrived yet.
    pub fn bandwidth_estimate(&self, subscriber: ParticipantId) -> Result<Option<u64>, VoiceError> {
        let e = self.inner.member(subscriber)?.estimate();
        Ok((e > 0).then_some(e))
    }

    /// The participants of a room.
    pub fn participants(&self, room: RoomKey) -> Vec<ParticipantId> {
        let st = self.inner.state.lock();
        st.rooms
            .get(&room)
            .map(|r| r.members.iter().map(|m| m.id).collect())
            .unwrap_or_default()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> SfuStats {
        let s = &self.inner.stats;
        let (rooms, participants) = {
            let st = self.inner.state.lock();
            (st.rooms.len(), st.members.len())
        };
        SfuStats {
            rooms,
            participants,
            peer_connections: s.peer_connections.load(Ordering::Relaxed),
            live_tasks: self.inner.tasks.live(),
            ports_in_use: self.inner.ports.in_use(),
            packets_received: s.packets_received.load(Ordering::Relaxed),
            packets_forwarded: s.packets_forwarded.load(Ordering::Relaxed),
            bytes_forwarded: s.bytes_forwarded.load(Ordering::Relaxed),
            packets_dropped: s.packets_dropped.load(Ordering::Relaxed),
            packets_gated: s.packets_gated.load(Ordering::Relaxed),
            keyframe_requests: s.keyframe_requests.load(Ordering::Relaxed),
            joins: s.joins.load(Ordering::Relaxed),
            joins_refused: s.joins_refused.load(Ordering::Relaxed),
            forward_delay: s.forward_delay.snapshot(),
        }
    }

    /// Closes every participant (reason `Shutdown`).
    pub fn shutdown(&self) {
        let members: Vec<_> = self.inner.state.lock().members.values().cloned().collect();
        for m in members {
            m.close(LeaveReason::Shutdown);
        }
    }
}

type Admitted = (Arc<Member>, mpsc::Receiver<SfuEvent>);

impl SfuInner {
    fn member(&self, id: ParticipantId) -> Result<Arc<Member>, VoiceError> {
        self.state
            .lock()
            .members
            .get(&id)
            .cloned()
            .ok_or(VoiceError::NotInRoom)
    }

    pub(crate) fn next_track_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn ice_servers(&self, user: ParticipantId) -> Vec<IceServer> {
        let Some(turn) = &self.cfg.turn else {
            return Vec::new();
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let c = turn_credentials(&turn.secret, user, now, turn.ttl.as_secs());
        vec![IceServer {
            urls: turn.urls.clone(),
            username: c.username,
            credential: c.password,
        }]
    }

    /// The membership half of a join, under the lock: the room's loop (started for the
    /// room's first member) gets the member next.
    fn admit(&self, req: JoinRequest) -> Result<Admitted, VoiceError> {
        if !req.grants.connect {
            return Err(VoiceError::NotPermitted);
        }
        let limit = req
            .user_limit
            .unwrap_or(self.cfg.limits.default_max_participants);
        let mut st = self.state.lock();
        let occupied = st.rooms.get(&req.room).map_or(0, |r| {
            r.members.iter().filter(|m| m.id != req.participant).count()
        });
        if occupied >= limit {
            return Err(VoiceError::RoomFull);
        }
        if let Some(old) = st.members.get(&req.participant).cloned() {
            Self::detach(&mut st, &old);
            old.close(LeaveReason::Replaced);
        }
        let room = match st.rooms.entry(req.room) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                // The room's first member: its loop and port.
                let serial = self.next_track_id();
                let me = self.me.upgrade().ok_or(VoiceError::NotInRoom)?;
                let cmd = room::start(me, req.room, serial)?;
                e.insert(RoomState {
                    serial,
                    members: Vec::new(),
                    cmd,
                })
            }
        };
        let serial = self.next_track_id();
        let (ev_tx, ev_rx) = mpsc::channel(self.cfg.limits.event_queue.max(16));
        let member = Arc::new(Member {
            id: req.participant,
            serial,
            room: req.room,
            session: req.session,
            connect: AtomicBool::new(true),
            speak: AtomicBool::new(req.grants.speak),
            video: AtomicBool::new(req.grants.video),
            server_mute: AtomicBool::new(false),
            self_mute: AtomicBool::new(false),
            server_deaf: AtomicBool::new(false),
            self_deaf: AtomicBool::new(false),
            events: EventSink {
                tx: ev_tx,
                cmd: room.cmd.clone(),
                serial,
            },
            cmd: room.cmd.clone(),
            downlink: crate::engine::Downlink::default(),
            remb: AtomicU64::new(0),
            cap: AtomicU64::new(0),
            shows: Mutex::new(HashMap::new()),
            meter: LevelMeter::default(),
        });
        for other in &room.members {
            other.events.send(SfuEvent::ParticipantJoined {
                participant: member.id,
            });
        }
        // Under the lock: the loop has the member before any of its signals.
        let _ = room.cmd.send(Command::Add(member.clone()));
        room.members.push(member.clone());
        st.members.insert(member.id, member.clone());
        Ok((member, ev_rx))
    }

    /// Takes a member out of its room (and the member index). Its room's loop removes its
    /// connection and tracks when it gets the member's `Close`.
    fn detach(st: &mut State, member: &Arc<Member>) {
        if st
            .members
            .get(&member.id)
            .is_some_and(|m| Arc::ptr_eq(m, member))
        {
            st.members.remove(&member.id);
        }
        let Some(room) = st.rooms.get_mut(&member.room) else {
            return;
        };
        let before = room.members.len();
        room.members.retain(|m| !Arc::ptr_eq(m, member));
        if room.members.len() == before {
            return;
        }
        for other in &room.members {
            other.events.send(SfuEvent::ParticipantLeft {
                participant: member.id,
            });
        }
        if room.members.is_empty() {
            st.rooms.remove(&member.room);
        }
    }

    pub(crate) fn remove_member(&self, member: &Arc<Member>) {
        Self::detach(&mut self.state.lock(), member);
    }

    /// Whether the room with this serial still has members (its loop ends when not).
    pub(crate) fn room_open(&self, key: RoomKey, serial: u64) -> bool {
        self.state
            .lock()
            .rooms
            .get(&key)
            .is_some_and(|r| r.serial == serial)
    }
}
