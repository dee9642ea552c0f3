//! Voice and video calls: the gateway's side of `hearth-voice`.
//!
//! The SFU forwards media; this module decides who may be in which call
//! and tells everyone about it:
//! - **Joining** (`voice_join`) checks the channel (a voice channel the user
//!   can VIEW), CONNECT and the channel's user limit (members with
//!   MUTE_MEMBERS may exceed it), takes the room's lease (a voice room lives
//!   on one node), joins the SFU with grants from SPEAK and VIDEO, and
//!   sends the session `VOICE_SERVER` (ICE servers with short-lived TURN
//!   credentials). SDP and trickled candidates travel as `voice_signal`
//!   (client) and `VOICE_SIGNAL` (server) on the same session.
//! - **Voice states** (who is in which channel, muted, deafened, video,
//!   streaming, speaking) live in the shared `VoiceStates` (Redis in a
//!   cluster) and every change is a `VOICE_STATE_UPDATE` on the channel's
//!   subject, so exactly the members who can VIEW the channel get it, on
//!   every node, and it is replayed on resume.
//! - **Permissions are re-checked** whenever the community's permissions
//!   may have changed (the `internal.permissions` nudge every role,
//!   overwrite, membership, ban or timeout change sends) and every
//!   [`TICK`]: losing CONNECT removes the user from the call, losing SPEAK
//!   or VIDEO stops forwarding that media at once.
//! - A call belongs to the gateway session that joined: when that session
//!   is gone (not resumed within its window), the user leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hearth_chat::{ChatError, Permissions};
use hearth_state::{Leases, VoiceEntry, VoiceStates};
use hearth_store::ChannelKind;
use hearth_types::{ChannelId, CommunityId, UserId};
use hearth_voice::{
    Grants, JoinRequest, Layer, ParticipantId, RoomKey, SessionTag, Sfu, SfuEvent, Signal,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events::{EventKind, Subject};
use crate::gateway::hub::{Kind, Session};
use crate::gateway::protocol::VoiceFlags;
use crate::state::AppState;

/// How often rooms' leases and voice states are renewed and calls checked.
pub const TICK: Duration = Duration::from_secs(1);
/// A voice state lives this long unless its host renews it.
const STATE_TTL: Duration = Duration::from_secs(15);
/// A room's lease: renewed every tick; a dead host's lapses this soon.
const ROOM_LEASE: Duration = Duration::from_secs(5);

/// One user's voice state, as clients see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoiceState {
    pub user_id: String,
    pub community_id: String,
    /// Null once the user left.
    pub channel_id: Option<String>,
    pub session_id: String,
    pub self_mute: bool,
    pub self_deaf: bool,
    /// Muted by a moderator.
    pub mute: bool,
    /// Deafened by a moderator.
    pub deaf: bool,
    pub self_video: bool,
    pub self_stream: bool,
    pub speaking: bool,
}

/// Why a voice op was refused (sent to the session as `VOICE_SIGNAL`
/// `{type: "error", code, message}`).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<ChatError> for Refusal {
    fn from(e: ChatError) -> Refusal {
        match e {
            ChatError::NotFound => Refusal::new("not_found", "no such voice channel"),
            ChatError::Forbidden(p) => {
                Refusal::new("forbidden", format!("missing {}", p.names().join(", ")))
            }
            ChatError::Refused(why) => Refusal::new("forbidden", why),
            other => {
                tracing::warn!(error = %other, "voice: checking permissions");
                Refusal::new("unavailable", "try again shortly")
            }
        }
    }
}

/// A call hosted on this node.
struct Call {
    channel: ChannelId,
    community: CommunityId,
    session_id: String,
    /// Whether that session is on this node (else its node relays).
    local: bool,
    participant: Arc<hearth_voice::Participant>,
    state: VoiceState,
    /// Incremented per join, so a late event pump of an old call never
    /// touches a newer one.
    serial: u64,
}

pub struct Voice {
    sfu: Sfu,
    states: Arc<dyn VoiceStates>,
    leases: Arc<dyn Leases>,
    node: String,
    calls: Mutex<HashMap<UserId, Call>>,
    /// This node's sessions whose call another node hosts.
    fronted: Mutex<HashMap<UserId, Fronted>>,
    /// Set when the server stops: no more ticks or relayed ops.
    stopped: std::sync::atomic::AtomicBool,
    serial: std::sync::atomic::AtomicU64,
}

/// A local session's call hosted elsewhere: its ops are relayed on
/// `voice.room.<channel>`, and if the host dies this node takes over.
#[derive(Clone)]
struct Fronted {
    channel: ChannelId,
    session_id: String,
    self_mute: bool,
    self_deaf: bool,
}

fn grants(p: Permissions) -> Grants {
    Grants {
        connect: p.contains(Permissions::CONNECT),
        speak: p.contains(Permissions::SPEAK),
        video: p.contains(Permissions::VIDEO),
    }
}

fn room_lease(channel: ChannelId) -> String {
    format!("voice:room:{channel}")
}

/// Sends the session one dispatch of its own (not replayed to others).
fn tell(session: &Arc<Session>, t: &str, d: Value) {
    let ev = json!({ "t": t, "d": d }).to_string();
    if let Some(tail) = crate::gateway::protocol::tail_of(&ev) {
        session.push(Kind::Inline, &Arc::from(tail));
    }
}

fn tell_error(session: &Arc<Session>, r: &Refusal) {
    tell(session, "VOICE_SIGNAL", error_of(r));
}

fn error_of(r: &Refusal) -> Value {
    json!({ "type": "error", "code": r.code, "message": r.message })
}

/// Sends a dispatch to a call's session: here, or relayed to its node on
/// `gateway.voice.<session>`.
fn send_to(state: &AppState, session_id: &str, local: bool, t: &str, d: Value) {
    if local {
        if let Some(s) = state.hub.get(session_id) {
            tell(&s, t, d);
        }
    } else {
        state.publisher.publish(
            "VOICE_RELAY",
            Subject::VoiceSession(session_id.to_string()).to_string(),
            json!({ "t": t, "d": d }),
        );
    }
}

/// A relayed voice op, on `voice.room.<channel>`.
#[derive(Serialize, Deserialize)]
struct RoomOp {
    op: String,
    user: String,
    session: String,
    #[serde(default)]
    self_mute: bool,
    #[serde(default)]
    self_deaf: bool,
    #[serde(default)]
    flags: Option<VoiceFlagsWire>,
    #[serde(default)]
    signal: Option<Signal>,
    #[serde(default)]
    publisher: Option<String>,
    #[serde(default)]
    layer: Option<Layer>,
}

impl RoomOp {
    fn new(op: &str, user: UserId, session: &str) -> RoomOp {
        RoomOp {
            op: op.to_string(),
            user: user.to_string(),
            session: session.to_string(),
            self_mute: false,
            self_deaf: false,
            flags: None,
            signal: None,
            publisher: None,
            layer: None,
        }
    }
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct VoiceFlagsWire {
    self_mute: Option<bool>,
    self_deaf: Option<bool>,
    self_video: Option<bool>,
    self_stream: Option<bool>,
}

impl From<VoiceFlags> for VoiceFlagsWire {
    fn from(f: VoiceFlags) -> Self {
        VoiceFlagsWire {
            self_mute: f.self_mute,
            self_deaf: f.self_deaf,
            self_video: f.self_video,
            self_stream: f.self_stream,
        }
    }
}

impl From<VoiceFlagsWire> for VoiceFlags {
    fn from(f: VoiceFlagsWire) -> Self {
        VoiceFlags {
            self_mute: f.self_mute,
            self_deaf: f.self_deaf,
            self_video: f.self_video,
            self_stream: f.self_stream,
        }
    }
}

impl Voice {
    pub fn new(
        sfu: Sfu,
        states: Arc<dyn VoiceStates>,
        leases: Arc<dyn Leases>,
        node: String,
    ) -> Voice {
        Voice {
            sfu,
            states,
            leases,
            node,
            calls: Mutex::new(HashMap::new()),
            fronted: Mutex::new(HashMap::new()),
            stopped: Default::default(),
            serial: Default::default(),
        }
    }

    /// Ends every call hosted here, as a dying node would (the rooms'
    /// leases lapse and the participants' nodes re-host them).
    pub fn shutdown(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.calls.lock().clear();
        self.sfu.shutdown();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn stats(&self) -> hearth_voice::SfuStats {
        self.sfu.stats()
    }

    /// Exports the SFU's counters in `registry` (read when scraped).
    pub fn register_metrics(&self, registry: &prometheus::Registry) {
        crate::voice_metrics::VoiceMetrics::register(self.sfu.clone(), registry);
    }

    /// Calls hosted here.
    pub fn calls(&self) -> usize {
        self.calls.lock().len()
    }

    fn publish_state(state: &AppState, s: &VoiceState, channel: ChannelId, c: CommunityId) {
        state.publisher.publish_event(
            EventKind::VoiceStateUpdate,
            Subject::Channel(c, channel),
            serde_json::to_value(s).unwrap_or_default(),
        );
    }

    async fn store_state(&self, s: &VoiceState, channel: ChannelId, c: CommunityId, user: UserId) {
        let entry = VoiceEntry {
            user: user.0,
            community: c.0,
            channel: channel.0,
            host: self.node.clone(),
            state: serde_json::to_vec(s).unwrap_or_default(),
        };
        if let Err(e) = self.states.put(&entry, STATE_TTL).await {
            tracing::warn!(error = %e, "voice: storing a voice state");
        }
    }

    /// `voice_join` from a session here: hosted here when this node holds
    /// (or takes) the room's lease, else relayed to the node that does.
    /// Refusals are told to the session.
    pub async fn join(
        state: &AppState,
        session: &Arc<Session>,
        channel: ChannelId,
        self_mute: bool,
        self_deaf: bool,
    ) {
        let voice = &state.voice;
        let user = session.user;
        // Leaving a call relayed elsewhere first (one call per user).
        Self::unfront(state, user, Some(&session.id));
        match voice
            .leases
            .acquire(&room_lease(channel), &voice.node, ROOM_LEASE)
            .await
        {
            Ok(Some(_)) => {
                if let Err(r) = Self::host_join(
                    state,
                    &session.id,
                    true,
                    user,
                    channel,
                    self_mute,
                    self_deaf,
                )
                .await
                {
                    tell_error(session, &r);
                }
            }
            Ok(None) => {
                voice.end(state, user, None, None).await;
                voice.fronted.lock().insert(
                    user,
                    Fronted {
                        channel,
                        session_id: session.id.clone(),
                        self_mute,
                        self_deaf,
                    },
                );
                Self::relay(
                    state,
                    channel,
                    RoomOp {
                        self_mute,
                        self_deaf,
                        ..RoomOp::new("join", user, &session.id)
                    },
                );
            }
            Err(_) => tell_error(
                session,
                &Refusal::new("unavailable", "voice leases did not answer"),
            ),
        }
    }

    fn relay(state: &AppState, channel: ChannelId, op: RoomOp) {
        state.publisher.publish(
            "VOICE_OP",
            Subject::VoiceRoom(channel).to_string(),
            serde_json::to_value(&op).unwrap_or_default(),
        );
    }

    /// Forgets a relayed call of `user` (only `session`'s, when given),
    /// telling its host to end it.
    fn unfront(state: &AppState, user: UserId, session: Option<&str>) {
        let gone = {
            let mut fronted = state.voice.fronted.lock();
            match fronted.get(&user) {
                Some(f) if session.is_none_or(|s| s == f.session_id) => fronted.remove(&user),
                _ => None,
            }
        };
        if let Some(f) = gone {
            Self::relay(state, f.channel, RoomOp::new("leave", user, &f.session_id));
        }
    }

    /// Hosts `user`'s call here, for a session here (`local`) or on the
    /// node that relayed the join.
    async fn host_join(
        state: &AppState,
        session_id: &str,
        local: bool,
        user: UserId,
        channel: ChannelId,
        self_mute: bool,
        self_deaf: bool,
    ) -> Result<(), Refusal> {
        let voice = &state.voice;
        let (ch, p) = state.chat.visible_channel(channel, user).await?;
        let Some(c) = ch.community_id.filter(|_| ch.kind == ChannelKind::Voice) else {
            return Err(Refusal::new("invalid_request", "not a voice channel"));
        };
        if !p.contains(Permissions::CONNECT) {
            return Err(Refusal::new("forbidden", "missing CONNECT"));
        }
        let limit = usize::try_from(ch.settings.user_limit).unwrap_or(0);
        if limit > 0 && !p.contains(Permissions::MUTE_MEMBERS) {
            let inside = voice
                .states
                .in_community(c.0)
                .await
                .map_err(|_| Refusal::new("unavailable", "voice states did not answer"))?
                .iter()
                .filter(|e| e.channel == channel.0 && e.user != user.0)
                .count();
            if inside >= limit {
                return Err(Refusal::new(
                    "channel_full",
                    format!("at most {limit} members"),
                ));
            }
        }
        // One call per user: leaving the old one first tells its channel.
        voice.end(state, user, None, None).await;
        let joined = voice
            .sfu
            .join(JoinRequest {
                room: RoomKey(channel.0.unsigned_abs()),
                participant: ParticipantId(user.0.unsigned_abs()),
                session: SessionTag(session_id.to_string()),
                grants: grants(p),
                user_limit: (limit > 0 && !p.contains(Permissions::MUTE_MEMBERS)).then_some(limit),
            })
            .await
            .map_err(|e| Refusal::new("voice_refused", e.to_string()))?;
        let pid = joined.participant.id();
        let _ = voice.sfu.set_self_mute(pid, self_mute);
        let _ = voice.sfu.set_self_deaf(pid, self_deaf);
        let vs = VoiceState {
            user_id: user.to_string(),
            community_id: c.to_string(),
            channel_id: Some(channel.to_string()),
            session_id: session_id.to_string(),
            self_mute,
            self_deaf,
            ..Default::default()
        };
        let serial = voice
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        voice.calls.lock().insert(
            user,
            Call {
                channel,
                community: c,
                session_id: session_id.to_string(),
                local,
                participant: Arc::new(joined.participant),
                state: vs.clone(),
                serial,
            },
        );
        voice.store_state(&vs, channel, c, user).await;
        send_to(
            state,
            session_id,
            local,
            "VOICE_SERVER",
            json!({
                "channel_id": channel.to_string(),
                "community_id": c.to_string(),
                "ice_servers": joined.ice_servers,
            }),
        );
        Self::publish_state(state, &vs, channel, c);
        tokio::spawn(pump(state.clone(), user, serial, joined.events));
        Ok(())
    }

    /// A relayed op reached this node: only the room's host acts on it.
    async fn on_room_op(state: &AppState, channel: ChannelId, op: RoomOp) {
        let voice = &state.voice;
        let Ok(user) = op.user.parse::<UserId>() else {
            return;
        };
        let ours = |voice: &Voice| {
            voice
                .calls
                .lock()
                .get(&user)
                .is_some_and(|c| c.session_id == op.session && !c.local)
        };
        match op.op.as_str() {
            "join" => {
                // Whoever holds (or takes) the room's lease hosts it.
                if !matches!(
                    voice
                        .leases
                        .acquire(&room_lease(channel), &voice.node, ROOM_LEASE)
                        .await,
                    Ok(Some(_))
                ) || voice
                    .fronted
                    .lock()
                    .get(&user)
                    .is_some_and(|f| f.session_id == op.session)
                {
                    return;
                }
                if let Err(r) = Self::host_join(
                    state,
                    &op.session,
                    false,
                    user,
                    channel,
                    op.self_mute,
                    op.self_deaf,
                )
                .await
                {
                    send_to(state, &op.session, false, "VOICE_SIGNAL", error_of(&r));
                }
            }
            _ if !ours(voice) => {}
            "leave" => voice.end(state, user, Some(&op.session), None).await,
            "state" => {
                if let Some(flags) = op.flags {
                    Self::apply_flags(state, user, &op.session, flags.into()).await;
                }
            }
            "signal" => {
                if let Some(signal) = op.signal {
                    Self::apply_signal(state, user, &op.session, signal).await;
                }
            }
            "layer" => {
                if let (Some(p), Some(layer)) =
                    (op.publisher.and_then(|p| p.parse().ok()), op.layer)
                {
                    Self::apply_layer(state, user, &op.session, p, layer);
                }
            }
            _ => {}
        }
    }

    /// A dispatch relayed from the host for a session here.
    pub fn to_local_session(state: &AppState, session_id: &str, v: &Value) {
        let Some(s) = state.hub.get(session_id) else {
            return;
        };
        let (t, d) = (v["d"]["t"].as_str().unwrap_or_default(), &v["d"]["d"]);
        if t.is_empty() {
            return;
        }
        if t == "VOICE_SIGNAL" && d["type"] == "left" {
            state
                .voice
                .fronted
                .lock()
                .retain(|_, f| f.session_id != session_id);
        }
        tell(&s, t, d.clone());
    }

    /// `voice_leave` from this session (a leave from another session of
    /// the same user does not end a call it does not hold).
    pub async fn leave(state: &AppState, session: &Arc<Session>) {
        Self::unfront(state, session.user, Some(&session.id));
        state
            .voice
            .end(state, session.user, Some(&session.id), None)
            .await;
    }

    /// Ends `user`'s call here (if `session` is given, only the call that
    /// session holds), telling the channel and, with `why`, the user.
    async fn end(&self, state: &AppState, user: UserId, session: Option<&str>, why: Option<&str>) {
        let call = {
            let mut calls = self.calls.lock();
            match calls.get(&user) {
                Some(c) if session.is_none_or(|s| s == c.session_id) => calls.remove(&user),
                _ => None,
            }
        };
        let Some(call) = call else { return };
        if let Some(message) = why {
            let _ = self.sfu.kick(call.participant.id(), message);
            send_to(
                state,
                &call.session_id,
                call.local,
                "VOICE_SIGNAL",
                json!({ "type": "left", "reason": "kicked", "message": message }),
            );
        }
        drop(call.participant);
        let _ = self.states.remove(user.0, Some(call.channel.0)).await;
        let left = VoiceState {
            channel_id: None,
            speaking: false,
            ..call.state
        };
        Self::publish_state(state, &left, call.channel, call.community);
    }

    /// The relayed call of a session here, if its host is elsewhere.
    fn fronted_for(&self, session: &Session) -> Option<ChannelId> {
        self.fronted
            .lock()
            .get(&session.user)
            .filter(|f| f.session_id == session.id)
            .map(|f| f.channel)
    }

    /// `voice_state`: the user's own flags.
    pub async fn update(state: &AppState, session: &Arc<Session>, flags: VoiceFlags) {
        if let Some(channel) = state.voice.fronted_for(session) {
            if let Some(f) = state.voice.fronted.lock().get_mut(&session.user) {
                f.self_mute = flags.self_mute.unwrap_or(f.self_mute);
                f.self_deaf = flags.self_deaf.unwrap_or(f.self_deaf);
            }
            let op = RoomOp {
                flags: Some(flags.into()),
                ..RoomOp::new("state", session.user, &session.id)
            };
            return Self::relay(state, channel, op);
        }
        if !Self::apply_flags(state, session.user, &session.id, flags).await {
            tell_error(
                session,
                &Refusal::new("not_in_call", "not in a voice channel"),
            );
        }
    }

    async fn apply_flags(state: &AppState, user: UserId, session: &str, flags: VoiceFlags) -> bool {
        let voice = &state.voice;
        let (vs, channel, c, pid) = {
            let mut calls = voice.calls.lock();
            let Some(call) = calls.get_mut(&user).filter(|c| c.session_id == session) else {
                return false;
            };
            let s = &mut call.state;
            s.self_mute = flags.self_mute.unwrap_or(s.self_mute);
            s.self_deaf = flags.self_deaf.unwrap_or(s.self_deaf);
            s.self_video = flags.self_video.unwrap_or(s.self_video);
            s.self_stream = flags.self_stream.unwrap_or(s.self_stream);
            (
                s.clone(),
                call.channel,
                call.community,
                call.participant.id(),
            )
        };
        let _ = voice.sfu.set_self_mute(pid, vs.self_mute);
        let _ = voice.sfu.set_self_deaf(pid, vs.self_deaf);
        voice.store_state(&vs, channel, c, user).await;
        Self::publish_state(state, &vs, channel, c);
        true
    }

    /// `voice_signal`: hands SDP or a candidate to the call's connection.
    pub async fn signal(state: &AppState, session: &Arc<Session>, signal: Signal) {
        if let Some(channel) = state.voice.fronted_for(session) {
            let op = RoomOp {
                signal: Some(signal),
                ..RoomOp::new("signal", session.user, &session.id)
            };
            return Self::relay(state, channel, op);
        }
        Self::apply_signal(state, session.user, &session.id, signal).await;
    }

    async fn apply_signal(state: &AppState, user: UserId, session: &str, signal: Signal) {
        let call = state
            .voice
            .calls
            .lock()
            .get(&user)
            .filter(|c| c.session_id == session)
            .map(|c| (c.participant.clone(), c.local));
        let refusal = match call {
            None => Refusal::new("not_in_call", "not in a voice channel"),
            Some((p, local)) => match p.signal(signal).await {
                Ok(()) => return,
                Err(e) => {
                    let r = Refusal::new("bad_signal", e.to_string());
                    return send_to(state, session, local, "VOICE_SIGNAL", error_of(&r));
                }
            },
        };
        send_to(state, session, true, "VOICE_SIGNAL", error_of(&refusal));
    }

    /// `voice_layer`: the highest layer of `publisher`'s video this user wants.
    pub fn layer(state: &AppState, session: &Arc<Session>, publisher: UserId, layer: Layer) {
        if let Some(channel) = state.voice.fronted_for(session) {
            let op = RoomOp {
                publisher: Some(publisher.to_string()),
                layer: Some(layer),
                ..RoomOp::new("layer", session.user, &session.id)
            };
            return Self::relay(state, channel, op);
        }
        Self::apply_layer(state, session.user, &session.id, publisher, layer);
    }

    fn apply_layer(state: &AppState, user: UserId, session: &str, publisher: UserId, layer: Layer) {
        let call = state
            .voice
            .calls
            .lock()
            .get(&user)
            .filter(|c| c.session_id == session)
            .map(|c| (c.participant.id(), c.local));
        if let Some((pid, local)) = call
            && let Err(e) =
                state
                    .voice
                    .sfu
                    .set_max_layer(pid, ParticipantId(publisher.0.unsigned_abs()), layer)
        {
            let r = Refusal::new("bad_signal", e.to_string());
            send_to(state, session, local, "VOICE_SIGNAL", error_of(&r));
        }
    }

    /// A moderator's server mute or deafen (`None`: unchanged).
    pub async fn moderate(
        state: &AppState,
        c: CommunityId,
        target: UserId,
        mute: Option<bool>,
        deaf: Option<bool>,
    ) -> bool {
        let voice = &state.voice;
        let found = {
            let mut calls = voice.calls.lock();
            calls
                .get_mut(&target)
                .filter(|call| call.community == c)
                .map(|call| {
                    call.state.mute = mute.unwrap_or(call.state.mute);
                    call.state.deaf = deaf.unwrap_or(call.state.deaf);
                    (call.state.clone(), call.channel, call.participant.id())
                })
        };
        let Some((vs, channel, pid)) = found else {
            return false;
        };
        let _ = voice.sfu.set_server_mute(pid, vs.mute);
        let _ = voice.sfu.set_deaf(pid, vs.deaf);
        voice.store_state(&vs, channel, c, target).await;
        Self::publish_state(state, &vs, channel, c);
        true
    }

    /// A moderator moves `target` to another voice channel: the old call
    /// ends and the session joins the new one at once (`VOICE_SERVER`
    /// follows, as after its own `voice_join`). The caller checked that
    /// `target` may connect there.
    pub async fn move_to(
        state: &AppState,
        c: CommunityId,
        target: UserId,
        dest: ChannelId,
    ) -> bool {
        let found = state
            .voice
            .calls
            .lock()
            .get(&target)
            .filter(|call| call.community == c)
            .map(|call| {
                (
                    call.session_id.clone(),
                    call.local,
                    call.state.self_mute,
                    call.state.self_deaf,
                )
            });
        let Some((session_id, local, self_mute, self_deaf)) = found else {
            return false;
        };
        send_to(
            state,
            &session_id,
            local,
            "VOICE_SIGNAL",
            json!({ "type": "moved", "channel_id": dest.to_string() }),
        );
        // The destination room may be hosted elsewhere: that host takes the
        // join (this node stays the session's relay only if it is the
        // session's node; a session elsewhere keeps its own node's relay).
        if let Err(r) = Self::host_join(
            state,
            &session_id,
            local,
            target,
            dest,
            self_mute,
            self_deaf,
        )
        .await
        {
            send_to(state, &session_id, local, "VOICE_SIGNAL", error_of(&r));
        }
        true
    }

    /// A moderator disconnects `target` from the community's calls.
    pub async fn disconnect(state: &AppState, c: CommunityId, target: UserId) -> bool {
        let here = state
            .voice
            .calls
            .lock()
            .get(&target)
            .is_some_and(|call| call.community == c);
        if here {
            state
                .voice
                .end(state, target, None, Some("disconnected by a moderator"))
                .await;
        }
        here
    }

    /// Every voice state in the community (for READY and the REST list).
    pub async fn states_in(&self, c: CommunityId) -> Vec<VoiceState> {
        match self.states.in_community(c.0).await {
            Ok(entries) => entries
                .iter()
                .filter_map(|e| serde_json::from_slice(&e.state).ok())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "voice: listing voice states");
                Vec::new()
            }
        }
    }

    /// Re-checks the calls in `c` (all calls when `None`): who lost CONNECT
    /// leaves, grants follow SPEAK and VIDEO, sessions that are gone leave.
    pub async fn recheck(state: &AppState, c: Option<CommunityId>) {
        let voice = &state.voice;
        let calls: Vec<(UserId, ChannelId, String, bool, ParticipantId)> = voice
            .calls
            .lock()
            .iter()
            .filter(|(_, call)| c.is_none_or(|c| c == call.community))
            .map(|(u, call)| {
                (
                    *u,
                    call.channel,
                    call.session_id.clone(),
                    call.local,
                    call.participant.id(),
                )
            })
            .collect();
        for (user, channel, session, local, pid) in calls {
            // A session elsewhere is its own node's to watch (it relays a leave).
            if local && state.hub.get(&session).is_none() {
                voice.end(state, user, Some(&session), None).await;
                continue;
            }
            match state.chat.visible_channel(channel, user).await {
                Ok((_, p)) if p.contains(Permissions::CONNECT) => {
                    let _ = voice.sfu.set_grants(pid, grants(p));
                }
                Ok(_) | Err(ChatError::NotFound) | Err(ChatError::Forbidden(_)) => {
                    voice
                        .end(
                            state,
                            user,
                            Some(&session),
                            Some("you can no longer connect to this channel"),
                        )
                        .await;
                }
                Err(e) => tracing::warn!(error = %e, "voice: re-checking a call"),
            }
        }
    }

    /// Renews the leases of the rooms hosted here and the voice states of
    /// their calls, and re-checks every call (channels deleted, sessions
    /// gone); then gives up the leases of rooms left empty.
    async fn tick(state: &AppState, held: &mut Vec<ChannelId>) {
        let voice = &state.voice;
        Self::recheck(state, None).await;
        let calls: Vec<(UserId, ChannelId, CommunityId, VoiceState)> = voice
            .calls
            .lock()
            .iter()
            .map(|(u, c)| (*u, c.channel, c.community, c.state.clone()))
            .collect();
        let mut rooms: Vec<ChannelId> = calls.iter().map(|c| c.1).collect();
        rooms.sort_unstable();
        rooms.dedup();
        for room in &rooms {
            if let Err(e) = voice
                .leases
                .acquire(&room_lease(*room), &voice.node, ROOM_LEASE)
                .await
            {
                tracing::warn!(error = %e, "voice: renewing a room's lease");
            }
        }
        for (user, channel, c, vs) in &calls {
            voice.store_state(vs, *channel, *c, *user).await;
        }
        for gone in held.iter().filter(|r| !rooms.contains(r)) {
            let _ = voice
                .leases
                .release(&room_lease(*gone), &voice.node, 0)
                .await;
        }
        *held = rooms;
        Self::watch_fronted(state).await;
    }

    /// This node's sessions in calls hosted elsewhere: a session that is
    /// gone leaves; a room whose host stopped renewing its lease (the node
    /// died) is taken over here, and the session told to reconnect
    /// (`VOICE_SIGNAL` `reconnect`, then `VOICE_SERVER`), with no user action.
    async fn watch_fronted(state: &AppState) {
        let voice = &state.voice;
        let fronted: Vec<(UserId, Fronted)> = voice
            .fronted
            .lock()
            .iter()
            .map(|(u, f)| (*u, f.clone()))
            .collect();
        for (user, f) in fronted {
            let Some(session) = state.hub.get(&f.session_id) else {
                Self::unfront(state, user, Some(&f.session_id));
                continue;
            };
            let taken = matches!(
                voice
                    .leases
                    .acquire(&room_lease(f.channel), &voice.node, ROOM_LEASE)
                    .await,
                Ok(Some(_))
            );
            if !taken {
                continue;
            }
            voice
                .fronted
                .lock()
                .retain(|_, g| g.session_id != f.session_id);
            tracing::info!(channel = %f.channel, "voice: the room's host is gone; hosting it here");
            tell(
                &session,
                "VOICE_SIGNAL",
                json!({ "type": "reconnect", "channel_id": f.channel.to_string() }),
            );
            if let Err(r) = Self::host_join(
                state,
                &f.session_id,
                true,
                user,
                f.channel,
                f.self_mute,
                f.self_deaf,
            )
            .await
            {
                tell_error(&session, &r);
            }
        }
    }

    /// The background work: ticks until the server stops, and takes the
    /// relayed ops for the rooms hosted here.
    pub fn start(state: AppState) {
        let weak = Arc::downgrade(&state.0);
        let bus = state.bus.clone();
        drop(state);
        let ops = weak.clone();
        tokio::spawn(async move {
            let mut sub = match bus.subscribe("voice.room.").await {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::error!(error = %e, "voice: cannot follow relayed ops");
                    return;
                }
            };
            while let Some(d) = sub.next().await {
                let hearth_bus::Delivery::Event(env) = d else {
                    continue;
                };
                let Some(inner) = ops.upgrade() else { return };
                if inner.voice.is_stopped() {
                    return;
                }
                let Ok(Subject::VoiceRoom(channel)) = env.subject.parse::<Subject>() else {
                    continue;
                };
                let Ok(v) = serde_json::from_slice::<Value>(&env.data) else {
                    continue;
                };
                let Ok(op) = serde_json::from_value::<RoomOp>(v["d"].clone()) else {
                    continue;
                };
                // In order: a call's candidates must follow its offer.
                Self::on_room_op(&AppState(inner), channel, op).await;
            }
        });
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.voice.is_stopped() {
                    return;
                }
                Self::tick(&AppState(inner), &mut held).await;
            }
        });
    }
}

/// Carries the SFU's events for one call to its session; speaking changes
/// of this user become voice state updates; the call's end cleans up.
async fn pump(
    state: AppState,
    user: UserId,
    serial: u64,
    mut events: tokio::sync::mpsc::Receiver<SfuEvent>,
) {
    let me = ParticipantId(user.0.unsigned_abs());
    while let Some(ev) = events.recv().await {
        let current = {
            let calls = state.voice.calls.lock();
            calls
                .get(&user)
                .filter(|c| c.serial == serial)
                .map(|c| (c.session_id.clone(), c.local, c.channel, c.community))
        };
        let Some((session_id, local, channel, c)) = current else {
            return;
        };
        match ev {
            SfuEvent::Speaking {
                participant,
                speaking,
            } => {
                if participant != me {
                    continue;
                }
                let vs = {
                    let mut calls = state.voice.calls.lock();
                    let Some(call) = calls.get_mut(&user).filter(|c| c.serial == serial) else {
                        return;
                    };
                    call.state.speaking = speaking;
                    call.state.clone()
                };
                Voice::publish_state(&state, &vs, channel, c);
            }
            SfuEvent::Left(reason) => {
                let mut d = serde_json::to_value(&reason).unwrap_or_default();
                d["type"] = json!("left");
                send_to(&state, &session_id, local, "VOICE_SIGNAL", d);
                state.voice.end(&state, user, Some(&session_id), None).await;
                return;
            }
            other => {
                let mut d = serde_json::to_value(&other).unwrap_or_default();
                d["channel_id"] = json!(channel.to_string());
                // Ids travel as decimal strings, as everywhere on the wire
                // (JavaScript numbers cannot hold a snowflake).
                if let Some(n) = d.get("participant").and_then(Value::as_u64) {
                    d["participant"] = json!(n.to_string());
                }
                send_to(&state, &session_id, local, "VOICE_SIGNAL", d);
            }
        }
    }
}
