//! Voice through the gateway with real WebRTC peers (webrtc-rs over
//! loopback: ICE, DTLS, SRTP): joining, media both ways, voice states to
//! the channel's viewers, permission loss, limits and bad input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hearth_voice::peer::{self, SendTrack};
use parking_lot::Mutex;
use reqwest::StatusCode;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState};

use crate::gateway::{Got, Gw};
use crate::{TestServer, User, assert_error};

pub const WAIT: Duration = Duration::from_secs(10);

/// What a call's peer saw: gateway dispatches and RTP per stream.
#[derive(Default)]
struct Seen {
    dispatches: Mutex<Vec<(String, Value)>>,
    /// Packets per (publisher id, "audio" | "video").
    packets: Mutex<HashMap<(String, &'static str), usize>>,
    gathered: Mutex<bool>,
}

struct Events(Arc<Seen>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            *self.0.gathered.lock() = true;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let seen = self.0.clone();
        tokio::spawn(async move {
            // Track ids are `<publisher>-<kind>-<n>`.
            let id = track.track_id().await;
            let publisher = id.split('-').next().unwrap_or_default().to_string();
            let kind = if id.contains("-audio-") {
                "audio"
            } else {
                "video"
            };
            while let Some(ev) = track.poll().await {
                match ev {
                    TrackRemoteEvent::OnRtpPacket(_) => {
                        *seen
                            .packets
                            .lock()
                            .entry((publisher.clone(), kind))
                            .or_default() += 1;
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// One user in a call: a gateway session and a peer connection that
/// publishes synthetic Opus (loud, with RFC 6464 levels) and VP8.
pub struct Caller {
    pub user: User,
    pc: Arc<dyn PeerConnection>,
    ops: mpsc::UnboundedSender<Value>,
    seen: Arc<Seen>,
    sending: watch::Sender<bool>,
}

impl Caller {
    /// Identifies `user` and prepares a peer connection (nothing joined yet).
    pub async fn connect(s: &TestServer, user: User) -> Caller {
        let (gw, _) = Gw::identify(s, &user).await;
        let seen = Arc::new(Seen::default());
        let pc = peer::client(Arc::new(Events(seen.clone())))
            .await
            .expect("peer connection");
        let (ops, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(gw, rx, pc.clone(), seen.clone()));
        let (sending, _) = watch::channel(true);
        Caller {
            user,
            pc,
            ops,
            seen,
            sending,
        }
    }

    pub fn op(&self, op: &str, d: Value) {
        let _ = self.ops.send(json!({ "op": op, "d": d }));
    }

    /// The first dispatch `t` whose data satisfies `ok`, waiting up to `within`.
    pub async fn dispatch(
        &self,
        t: &str,
        within: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let until = Instant::now() + within;
        loop {
            if let Some(d) = self
                .seen
                .dispatches
                .lock()
                .iter()
                .find(|(name, d)| name == t && ok(d))
                .map(|(_, d)| d.clone())
            {
                return Some(d);
            }
            if Instant::now() > until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many dispatches `t` arrived so far.
    pub fn count(&self, t: &str) -> usize {
        self.seen
            .dispatches
            .lock()
            .iter()
            .filter(|(name, _)| name == t)
            .count()
    }

    pub fn packets(&self, publisher: &User, kind: &'static str) -> usize {
        self.seen
            .packets
            .lock()
            .get(&(publisher.id.clone(), kind))
            .copied()
            .unwrap_or(0)
    }

    /// Joins `channel`, publishes audio and video, and offers (with every
    /// candidate in the offer, so the client trickles nothing).
    pub async fn join(&self, channel: &str) {
        self.op("voice_join", json!({ "channel_id": channel }));
        self.dispatch("VOICE_SERVER", WAIT, |d| d["channel_id"] == channel)
            .await
            .expect("VOICE_SERVER");
        let audio = SendTrack::add(&self.pc, RtpCodecKind::Audio, peer::opus(), &[], "mic")
            .await
            .expect("audio track");
        let video = SendTrack::add(&self.pc, RtpCodecKind::Video, peer::vp8(), &[], "cam")
            .await
            .expect("video track");
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc
            .set_local_description(offer)
            .await
            .expect("local offer");
        // Host candidates on loopback are gathered at once; do not wait on
        // the gathering-complete event beyond that.
        let until = Instant::now() + Duration::from_millis(300);
        while !*self.seen.gathered.lock() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sdp = self.pc.local_description().await.expect("sdp").sdp;
        self.op("voice_signal", json!({ "type": "offer", "sdp": sdp }));
        self.send_media(audio, video).await;
    }

    /// 50 audio packets a second (loud, RFC 6464 level -10 dBov) and 16
    /// one-packet VP8 frames, once negotiation gives payload types.
    async fn send_media(&self, audio: SendTrack, video: SendTrack) {
        let mut on = self.sending.subscribe();
        tokio::spawn(async move {
            let (a, v) = loop {
                if let (Some(a), Some(v)) = (audio.negotiated().await, video.negotiated().await) {
                    break (a, v);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut seq, mut n) = (0u16, 0u32);
            while *on.borrow_and_update() {
                tick.tick().await;
                seq = seq.wrapping_add(1);
                n = n.wrapping_add(1);
                let mut header = rtp::header::Header {
                    version: 2,
                    payload_type: a.0,
                    sequence_number: seq,
                    timestamp: n.wrapping_mul(960),
                    ssrc: audio.encodings[0].1,
                    ..Default::default()
                };
                if let Some(id) = a.1 {
                    let _ = header.set_extension(id, Bytes::from_static(&[0x80 | 10]));
                }
                // An Opus TOC byte (20 ms CELT) and filler.
                let payload = Bytes::from_static(&[0xfc, 0xff, 0xfe]);
                let _ = audio.track.write_rtp(rtp::Packet { header, payload }).await;
                if n % 3 == 0 {
                    // VP8: descriptor with S=1, a keyframe every 30 frames.
                    let key = n % 90 == 3;
                    let header = rtp::header::Header {
                        version: 2,
                        payload_type: v.0,
                        sequence_number: seq / 3,
                        timestamp: n.wrapping_mul(1800),
                        ssrc: video.encodings[0].1,
                        marker: true,
                        ..Default::default()
                    };
                    let payload = Bytes::from(vec![0x10, u8::from(!key), 0x9d, 0x01, 0x2a]);
                    let _ = video.track.write_rtp(rtp::Packet { header, payload }).await;
                }
            }
        });
    }

    pub async fn stop(&self) {
        let _ = self.sending.send(false);
        let _ = self.pc.close().await;
    }
}

/// Carries ops to the gateway and applies what comes back: the SFU's
/// answers, offers (answered at once) and candidates; records dispatches.
async fn drive(
    mut gw: Gw,
    mut ops: mpsc::UnboundedReceiver<Value>,
    pc: Arc<dyn PeerConnection>,
    seen: Arc<Seen>,
) {
    let mut beat = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            op = ops.recv() => match op {
                Some(op) => gw.send(op).await,
                None => return,
            },
            _ = beat.tick() => gw.send(json!({"op": "heartbeat", "d": {"s": gw.last_s}})).await,
            got = gw.next(Duration::from_millis(50)) => match got {
                Got::Frame(f) if f["op"] == "dispatch" => {
                    let (t, d) = (f["t"].as_str().unwrap_or_default().to_string(), f["d"].clone());
                    if t == "VOICE_SIGNAL" {
                        apply(&mut gw, &pc, &d).await;
                    }
                    seen.dispatches.lock().push((t, d));
                }
                Got::Frame(_) | Got::Nothing => {}
                Got::Closed(_) => return,
            },
        }
    }
}

async fn apply(gw: &mut Gw, pc: &Arc<dyn PeerConnection>, d: &Value) {
    let sdp = d["sdp"].as_str().unwrap_or_default().to_string();
    match d["type"].as_str() {
        Some("answer") => {
            let _ = peer::accept(pc, sdp).await;
        }
        Some("offer") => {
            if let Ok(answer) = peer::answer(pc, sdp).await {
                gw.send(json!({"op": "voice_signal", "d": {"type": "answer", "sdp": answer}}))
                    .await;
            }
        }
        Some("candidate") => {
            if let Ok(c) = serde_json::from_value(d.clone()) {
                peer::add_candidate(pc, c).await;
            }
        }
        _ => {}
    }
}

/// Waits until `count()` grows by `by` within `within`.
pub async fn grows(what: &str, within: Duration, by: usize, count: impl Fn() -> usize) {
    let start = count();
    let until = Instant::now() + within;
    while count() < start + by {
        assert!(
            Instant::now() < until,
            "{what}: {} → {} within {within:?}",
            start,
            count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts `count()` stops growing (at most `slack` more) once `settle` has passed.
async fn stalls(what: &str, settle: Duration, count: impl Fn() -> usize) {
    tokio::time::sleep(settle).await;
    let at = count();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(count() <= at + 2, "{what} kept flowing: {at} → {}", count());
}

pub async fn voice_channel(
    s: &TestServer,
    owner: &User,
    c: &str,
    name: &str,
    limit: i32,
) -> String {
    let (st, ch) = s
        .post(
            &format!("/api/v1/communities/{c}/channels"),
            &owner.token,
            json!({"name": name, "kind": "voice", "user_limit": limit}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    ch["id"].as_str().unwrap().to_string()
}

async fn deny(s: &TestServer, owner: &User, channel: &str, who: &User, perms: &[&str]) {
    let (st, v) = s
        .put(
            &format!("/api/v1/channels/{channel}/overwrites/{}", who.id),
            &owner.token,
            Some(json!({"target_type": "member", "allow": [], "deny": perms})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Two people talk and see each other; a member watching the channel sees
/// who is in it; losing SPEAK silences, losing CONNECT removes, both in
/// under a second; leaving tells everyone.
pub async fn two_people_talk_and_lose_permissions(s: &TestServer) {
    let owner = s.register("voiceown").await;
    let (c, _) = s.community(&owner, "Voice").await;
    let room = voice_channel(s, &owner, &c, "Lounge", 0).await;
    let (ann, bob, eve) = (
        s.register("vann").await,
        s.register("vbob").await,
        s.register("veve").await,
    );
    for u in [&ann, &bob, &eve] {
        s.join(&owner, &c, u).await;
    }
    let watcher = Caller::connect(s, eve).await;
    let a = Caller::connect(s, ann).await;
    let b = Caller::connect(s, bob).await;
    let joined_at = Instant::now();
    a.join(&room).await;
    let b_joins = Instant::now();
    b.join(&room).await;
    eprintln!(
        "voice: bob's join to VOICE_SERVER and offer sent: {:?}",
        b_joins.elapsed()
    );
    grows("bob's first audio at ann", WAIT, 1, || {
        a.packets(&b.user, "audio")
    })
    .await;
    eprintln!(
        "voice: bob's join to his first audio packet at ann: {:?}",
        b_joins.elapsed()
    );

    grows("ann hears bob", WAIT, 25, || a.packets(&b.user, "audio")).await;
    grows("bob hears ann", WAIT, 25, || b.packets(&a.user, "audio")).await;
    grows("ann sees bob", WAIT, 10, || a.packets(&b.user, "video")).await;
    grows("bob sees ann", WAIT, 10, || b.packets(&a.user, "video")).await;
    eprintln!(
        "voice: both ways within {:?} of the first join",
        joined_at.elapsed()
    );
    // The SFU's numbers reach /metrics: this call's room, its two people,
    // what was forwarded, and the keyframes each new video subscriber asked
    // for.
    let text = s.metrics().await;
    let value = |name: &str| {
        text.value(name, &[])
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    // (A server of its own: the figures are this test's alone.)
    assert_eq!(value("hearth_voice_rooms"), 1.0, "{text}");
    assert_eq!(value("hearth_voice_participants"), 2.0, "{text}");
    assert_eq!(value("hearth_voice_peer_connections"), 2.0, "{text}");
    assert_eq!(value("hearth_voice_joins_total"), 2.0, "{text}");
    assert_eq!(value("hearth_voice_joins_refused_total"), 0.0, "{text}");
    assert!(
        value("hearth_voice_packets_received_total") >= 70.0,
        "{text}"
    );
    assert!(
        value("hearth_voice_packets_forwarded_total") >= 70.0,
        "{text}"
    );
    assert!(value("hearth_voice_forwarded_bytes_total") > 0.0, "{text}");
    assert!(
        value("hearth_voice_keyframe_requests_total") >= 1.0,
        "{text}"
    );
    assert_eq!(value("hearth_voice_packets_gated_total"), 0.0, "{text}");
    // Every forwarded datagram's own delay in the SFU (kernel arrival → copies sent).
    let delayed = value("hearth_voice_forward_delay_seconds_count");
    assert!(delayed >= 70.0, "{text}");
    assert!(
        delayed <= value("hearth_voice_packets_received_total"),
        "{text}"
    );
    let sum = value("hearth_voice_forward_delay_seconds_sum");
    assert!(
        sum > 0.0 && sum / delayed < 0.05,
        "a mean under 50 ms: {text}"
    );

    // Who is in the call: the watcher's dispatches and the REST list.
    for u in [&a.user, &b.user] {
        watcher
            .dispatch("VOICE_STATE_UPDATE", WAIT, |d| {
                d["user_id"] == u.id.as_str() && d["channel_id"] == room.as_str()
            })
            .await
            .expect("the watcher sees the join");
    }
    let (st, list) = s
        .get(
            &format!("/api/v1/communities/{c}/voice-states"),
            &watcher.user.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // Speaking: loud audio levels mark bob as speaking.
    watcher
        .dispatch("VOICE_STATE_UPDATE", WAIT, |d| {
            d["user_id"] == b.user.id.as_str() && d["speaking"] == true
        })
        .await
        .expect("bob shows as speaking");

    // Losing SPEAK: bob's audio stops reaching ann within a second; video goes on.
    deny(s, &owner, &room, &b.user, &["SPEAK"]).await;
    stalls(
        "bob's audio after losing SPEAK",
        Duration::from_millis(1000),
        || a.packets(&b.user, "audio"),
    )
    .await;
    grows("bob's video after losing SPEAK", WAIT, 5, || {
        a.packets(&b.user, "video")
    })
    .await;

    // Losing CONNECT: bob is out of the call within a second, and told.
    let t = Instant::now();
    deny(s, &owner, &room, &b.user, &["CONNECT"]).await;
    b.dispatch("VOICE_SIGNAL", Duration::from_millis(1500), |d| {
        d["type"] == "left"
    })
    .await
    .expect("bob is told he left");
    watcher
        .dispatch("VOICE_STATE_UPDATE", Duration::from_millis(1500), |d| {
            d["user_id"] == b.user.id.as_str() && d["channel_id"].is_null()
        })
        .await
        .expect("everyone sees bob leave");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "removed in {:?}",
        t.elapsed()
    );
    stalls("bob's video after losing CONNECT", Duration::ZERO, || {
        a.packets(&b.user, "video")
    })
    .await;

    // Ann leaves: the list empties.
    a.op("voice_leave", json!({}));
    watcher
        .dispatch("VOICE_STATE_UPDATE", WAIT, |d| {
            d["user_id"] == a.user.id.as_str() && d["channel_id"].is_null()
        })
        .await
        .expect("ann's leave");
    let (_, list) = s
        .get(
            &format!("/api/v1/communities/{c}/voice-states"),
            &owner.token,
        )
        .await;
    assert_eq!(list, json!([]));
    a.stop().await;
    b.stop().await;
}

/// The refusal `code` told to `who` (as `VOICE_SIGNAL` type `error`).
async fn refused(who: &Caller, code: &'static str) -> Option<Value> {
    who.dispatch("VOICE_SIGNAL", WAIT, move |d| {
        d["type"] == "error" && d["code"] == code
    })
    .await
}

/// Joins that must be refused, a moderator's mute and disconnect, and bad
/// SDP that leaves the call working.
pub async fn refusals_limits_and_moderation(s: &TestServer) {
    let owner = s.register("vmod").await;
    let (c, text) = s.community(&owner, "Rules").await;
    let room = voice_channel(s, &owner, &c, "Small", 1).await;
    let (ann, bob) = (s.register("vann2").await, s.register("vbob2").await);
    for u in [&ann, &bob] {
        s.join(&owner, &c, u).await;
    }
    let a = Caller::connect(s, ann).await;
    let b = Caller::connect(s, bob).await;
    // A text channel is not a call.
    a.op("voice_join", json!({ "channel_id": text }));
    refused(&a, "invalid_request")
        .await
        .expect("text channel refused");
    // Without CONNECT.
    deny(s, &owner, &room, &b.user, &["CONNECT"]).await;
    b.op("voice_join", json!({ "channel_id": room }));
    refused(&b, "forbidden").await.expect("no CONNECT refused");
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{room}/overwrites/{}", b.user.id),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // A user limit of one.
    a.join(&room).await;
    b.op("voice_join", json!({ "channel_id": room }));
    refused(&b, "channel_full")
        .await
        .expect("a full channel refused");
    // Signals outside a call, and malformed SDP inside one.
    b.op("voice_signal", json!({"type": "answer", "sdp": "v=0"}));
    refused(&b, "not_in_call")
        .await
        .expect("signal outside a call");
    a.op(
        "voice_signal",
        json!({"type": "offer", "sdp": "not sdp at all"}),
    );
    refused(&a, "bad_signal")
        .await
        .expect("malformed SDP refused");

    // A moderator mutes ann (her state says so), then disconnects her.
    let path = format!("/api/v1/communities/{c}/voice-states/{}", a.user.id);
    let (st, e) = s.patch(&path, &b.user.token, json!({"mute": true})).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, _) = s.patch(&path, &owner.token, json!({"mute": true})).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    a.dispatch("VOICE_STATE_UPDATE", WAIT, |d| {
        d["user_id"] == a.user.id.as_str() && d["mute"] == true
    })
    .await
    .expect("server mute shows");
    let (st, _) = s.delete(&path, &owner.token).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    a.dispatch("VOICE_SIGNAL", WAIT, |d| d["type"] == "left")
        .await
        .expect("disconnected");
    let (st, e) = s.delete(&path, &owner.token).await;
    assert_error(st, &e, 404, "not_found");
    // The room has space again.
    b.op("voice_join", json!({ "channel_id": room }));
    b.dispatch("VOICE_SERVER", WAIT, |d| d["channel_id"] == room.as_str())
        .await
        .expect("bob joins the freed room");
    a.stop().await;
    b.stop().await;
}
