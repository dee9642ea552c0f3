//! The SFU with real webrtc-rs peers over loopback (ICE, DTLS, SRTP): no mocks.

#[path = "sfu/client.rs"]
mod client;

use client::{Client, Publish};
use hearth_voice::{
    Grants, JoinRequest, Joined, Layer, LeaveReason, Limits, ParticipantId, RoomKey, SessionTag,
    Sfu, SfuEvent, Signal, TrackKind, VoiceConfig, VoiceError, turn_credentials, turn_password,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const ROOM: RoomKey = RoomKey(7);

fn config() -> VoiceConfig {
    VoiceConfig::default()
}

fn request(room: RoomKey, id: u64) -> JoinRequest {
    JoinRequest {
        room,
        participant: ParticipantId(id),
        session: SessionTag(format!("session-{id}")),
        grants: Grants::ALL,
        user_limit: None,
    }
}

async fn joined(sfu: &Sfu, id: u64) -> Joined {
    sfu.join(request(ROOM, id)).await.expect("join")
}

/// Joins, negotiates, connects and starts sending.
async fn connect(sfu: &Sfu, id: u64, publish: Publish) -> Client {
    let mut c = Client::new(joined(sfu, id).await, publish).await;
    c.offer().await.expect("first offer accepted");
    assert!(
        c.wait_connected(Duration::from_secs(10)).await,
        "participant {id} connected"
    );
    c.start_sending().await;
    c
}

async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

const AV: Publish = Publish {
    audio: true,
    video: true,
    simulcast: false,
    screen: false,
    h264: false,
};

const LISTEN: Publish = Publish {
    audio: false,
    video: false,
    simulcast: false,
    screen: false,
    h264: false,
};

fn has_event(c: &Client, f: impl Fn(&SfuEvent) -> bool) -> bool {
    c.events().iter().any(f)
}

async fn all_released(sfu: &Sfu) -> bool {
    eventually(Duration::from_secs(10), || {
        let s = sfu.stats();
        s.live_tasks == 0
            && s.peer_connections == 0
            && s.participants == 0
            && s.rooms == 0
            && s.ports_in_use == 0
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_exchange_audio_and_video() {
    let sfu = Sfu::new(VoiceConfig {
        udp_ports: Some((43_000, 43_049)),
        ..config()
    })
    .expect("sfu");
    let a = connect(&sfu, 1, AV).await;
    let b = connect(&sfu, 2, AV).await;
    let flowing = eventually(Duration::from_secs(10), || {
        a.count(2, "audio") > 20
            && a.count(2, "camera") > 10
            && b.count(1, "audio") > 20
            && b.count(1, "camera") > 10
    })
    .await;
    assert!(
        flowing,
        "a got {:?}, b got {:?}\nerrors a {:?}\nerrors b {:?}",
        a.received()
            .iter()
            .map(|(k, v)| (k.clone(), v.packets))
            .collect::<Vec<_>>(),
        b.received()
            .iter()
            .map(|(k, v)| (k.clone(), v.packets))
            .collect::<Vec<_>>(),
        a.shared.errors.lock(),
        b.shared.errors.lock()
    );
    assert!(has_event(&a, |e| matches!(
        e,
        SfuEvent::TrackPublished {
            participant: ParticipantId(2),
            kind: TrackKind::Camera,
            ..
        }
    )));
    let s = sfu.stats();
    assert!(s.packets_forwarded > 60 && s.bytes_forwarded > 0, "{s:?}");
    // Each forwarded datagram's delay in the SFU, from its kernel timestamp: one per
    // datagram (two people: one copy each), and loopback's are well under a second.
    let d = &s.forward_delay;
    assert!(d.count() > 60 && d.count() <= s.packets_received, "{s:?}");
    let p99 = d.quantile(0.99).expect("recorded");
    assert!(p99 < Duration::from_millis(250), "{p99:?} {s:?}");
    assert!(
        s.keyframe_requests > 0,
        "new video subscribers ask for a keyframe: {s:?}"
    );
    assert_eq!(s.ports_in_use, 1, "one port per room");
    // The SFU's host candidates are on ports of the range.
    let ports: Vec<u16> = a
        .events()
        .iter()
        .filter_map(|e| match e {
            SfuEvent::Candidate(c) => c.candidate.split_whitespace().nth(5)?.parse().ok(),
            _ => None,
        })
        .collect();
    assert!(
        !ports.is_empty() && ports.iter().all(|p| (43_000..=43_049).contains(p)),
        "{ports:?}"
    );
    // A subscriber's PLI reaches the publisher (throttled to one per 500 ms per layer).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = sfu.stats().keyframe_requests;
    let heard_before = a.shared.keyframe_requests.load(Ordering::Relaxed);
    for _ in 0..3 {
        assert!(b.send_pli("1-camera-").await, "b has a's camera");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let after = sfu.stats().keyframe_requests;
    assert!(after >= before + 2, "PLIs passed on: {before} → {after}");
    let heard = eventually(Duration::from_secs(2), || {
        a.shared.keyframe_requests.load(Ordering::Relaxed) >= heard_before + 2
    })
    .await;
    assert!(
        heard,
        "the publisher's camera heard {} keyframe requests, had {heard_before}",
        a.shared.keyframe_requests.load(Ordering::Relaxed)
    );
    // TWCC feedback from the subscribers reaches the estimator.
    let estimated = eventually(Duration::from_secs(5), || {
        sfu.bandwidth_estimate(ParticipantId(1))
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    assert!(estimated, "no bandwidth estimate for a subscriber");
    a.close().await;
    b.close().await;
    drop((a, b));
    assert!(all_released(&sfu).await, "{:?}", sfu.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_is_forwarded_from_idr_on() {
    // webrtc-rs clients offer only their track's codec, so a peer connection negotiates
    // H.264 alone here (a browser offers all its codecs and can receive both).
    let sfu = Sfu::new(config()).expect("sfu");
    let h264 = Publish { h264: true, ..AV };
    let a = connect(&sfu, 1, h264).await;
    let b = connect(&sfu, 2, h264).await;
    let flowing = eventually(Duration::from_secs(10), || {
        a.count(2, "camera") > 10 && b.count(1, "camera") > 10
    })
    .await;
    assert!(
        flowing,
        "a {:?}\nb {:?}",
        a.shared.errors.lock(),
        b.shared.errors.lock()
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_renegotiates_and_leaver_is_removed() {
    let sfu = Sfu::new(config()).expect("sfu");
    let a = connect(&sfu, 1, AV).await;
    let b = connect(&sfu, 2, AV).await;
    let c = connect(&sfu, 3, AV).await;
    let announced = eventually(Duration::from_secs(5), || {
        a.events().iter().any(|e| {
            matches!(e, SfuEvent::TrackPublished { participant: ParticipantId(3), kind: TrackKind::Audio, stream_id, track_id }
                if stream_id == "3" && track_id.starts_with("3-audio-"))
        })
    })
    .await;
    assert!(announced, "{:?}", a.events());
    let everyone = eventually(Duration::from_secs(15), || {
        [(&a, [2, 3]), (&b, [1, 3]), (&c, [1, 2])]
            .iter()
            .all(|(x, others)| {
                others
                    .iter()
                    .all(|&o| x.count(o, "audio") > 10 && x.count(o, "camera") > 5)
            })
    })
    .await;
    assert!(
        everyone,
        "a {:?}\nb {:?}\nc {:?}",
        a.received(),
        b.received(),
        c.received()
    );
    assert_eq!(sfu.participants(ROOM).len(), 3);
    assert!(
        a.shared
            .offers_seen
            .lock()
            .last()
            .is_some_and(|sdp| sdp.contains("a=msid:3 3-")),
        "the SFU's offer names the track as TrackPublished did"
    );

    // C leaves: A and B are told, renegotiate, and get nothing more from C.
    c.close().await;
    drop(c);
    let told = eventually(Duration::from_secs(10), || {
        [&a, &b].iter().all(|x| {
            has_event(x, |e| {
                matches!(
                    e,
                    SfuEvent::ParticipantLeft {
                        participant: ParticipantId(3)
                    }
                )
            }) && x
                .events()
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        SfuEvent::TrackUnpublished {
                            participant: ParticipantId(3),
                            ..
                        }
                    )
                })
                .count()
                == 2
        })
    })
    .await;
    assert!(told, "a saw {:?}", a.events());
    // Its m-sections are stopped (port 0) in the SFU's next offer.
    let stopped = |sdp: &str| {
        sdp.split("\r\nm=")
            .filter(|m| m.contains("a=msid:3 "))
            .all(|m| m.split_whitespace().nth(1) == Some("0"))
    };
    let renegotiated = eventually(Duration::from_secs(10), || {
        [&a, &b].iter().all(|x| {
            x.shared
                .offers_seen
                .lock()
                .last()
                .is_some_and(|sdp| stopped(sdp))
        })
    })
    .await;
    assert!(renegotiated, "the SFU's last offer still sends 3's tracks");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = a.count(3, "audio");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(a.count(3, "audio"), before, "nothing from the leaver");
    let still = a.count(2, "audio");
    assert!(eventually(Duration::from_secs(3), || a.count(2, "audio") > still + 10).await);
    assert_eq!(sfu.participants(ROOM).len(), 2);
    a.close().await;
    b.close().await;
    drop((a, b));
    assert!(all_released(&sfu).await, "{:?}", sfu.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_switches_layers_on_keyframes_with_continuous_sequence_numbers() {
    let sfu = Sfu::new(config()).expect("sfu");
    let publisher = connect(
        &sfu,
        1,
        Publish {
            video: true,
            simulcast: true,
            ..LISTEN
        },
    )
    .await;
    let viewer_join = joined(&sfu, 2).await;
    sfu.set_max_layer(ParticipantId(2), ParticipantId(1), Layer::Low)
        .expect("member");
    let mut viewer = Client::new(viewer_join, LISTEN).await;
    viewer.offer().await.expect("offer");
    assert!(viewer.wait_connected(Duration::from_secs(10)).await);

    let layers = |c: &Client| -> Vec<u8> {
        c.received()
            .values()
            .flat_map(|r| r.seqs.iter().map(|(_, l, _)| *l))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(10), || layers(&viewer).len() > 15).await,
        "thumbnail flows"
    );
    assert!(
        layers(&viewer).iter().all(|&l| l == 0),
        "only the low layer: {:?}",
        layers(&viewer)
    );

    // Spotlight: the high layer, from its next keyframe on.
    sfu.set_max_layer(ParticipantId(2), ParticipantId(1), Layer::High)
        .expect("member");
    assert!(
        eventually(Duration::from_secs(5), || layers(&viewer)
            .iter()
            .filter(|&&l| l == 2)
            .count()
            > 15)
        .await
    );
    // Bandwidth falls: back to low. Then it recovers.
    sfu.set_bandwidth_cap(ParticipantId(2), Some(1))
        .expect("member");
    assert!(
        eventually(Duration::from_secs(5), || {
            let l = layers(&viewer);
            l.iter()
                .rposition(|&x| x == 0)
                .zip(l.iter().rposition(|&x| x == 2))
                .is_some_and(|(lo, hi)| lo > hi + 10)
        })
        .await
    );
    sfu.set_bandwidth_cap(ParticipantId(2), None)
        .expect("member");
    assert!(
        eventually(Duration::from_secs(5), || layers(&viewer).last()
            == Some(&2))
        .await
    );

    let received = viewer.received();
    assert_eq!(received.len(), 1, "one track: {:?}", received.keys());
    let r = received.values().next().expect("a track");
    assert_eq!(r.ssrcs.len(), 1, "one SSRC whatever the layer");
    for w in r.seqs.windows(2) {
        assert_eq!(
            w[1].0,
            w[0].0.wrapping_add(1),
            "sequence numbers continue across switches: {:?}",
            w
        );
    }
    // (The viewer may miss the very first packets, sent before its receiver was ready,
    // so the first one it sees need not be the keyframe the SFU started with.)
    let switches: Vec<_> = r.seqs.windows(2).filter(|w| w[0].1 != w[1].1).collect();
    assert!(
        switches.len() >= 3,
        "low → high → low → high, got {} switches",
        switches.len()
    );
    assert!(
        switches.iter().all(|w| w[1].2),
        "every switch lands on a keyframe: {switches:?}"
    );
    assert!(sfu.stats().keyframe_requests > 0);
    publisher.close().await;
    viewer.close().await;
    drop((publisher, viewer));
    assert!(all_released(&sfu).await, "{:?}", sfu.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_the_client_offer_wins_and_the_sfu_offers_again() {
    let sfu = Sfu::new(config()).expect("sfu");
    let mut a = connect(&sfu, 1, AV).await;
    let b = connect(&sfu, 2, LISTEN).await;
    assert!(eventually(Duration::from_secs(10), || b.count(1, "camera") > 5).await);

    // A starts sharing its screen: its offer is set locally but not yet sent...
    a.add_screen().await;
    let offer = a.prepare_offer().await;
    let seen = a.shared.offers_seen.lock().len();
    // ...when C joins and publishes, so the SFU offers C's audio to A at the same time.
    let _c = connect(
        &sfu,
        3,
        Publish {
            audio: true,
            ..LISTEN
        },
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || a.shared.offers_seen.lock().len()
            > seen)
        .await
    );
    // A (impolite) ignored it; its offer reaches the SFU, which rolls back and answers.
    a.send_offer(offer)
        .await
        .expect("the client's offer wins the glare");
    a.start_sending().await;
    let both = eventually(Duration::from_secs(10), || {
        b.count(1, "screen") > 10 && a.count(3, "audio") > 10
    })
    .await;
    assert!(
        both,
        "b {:?} {:?}\na {:?} {:?}\nb events {:?}",
        b.received()
            .iter()
            .map(|(k, v)| (k.clone(), v.packets))
            .collect::<Vec<_>>(),
        b.shared.errors.lock(),
        a.received()
            .iter()
            .map(|(k, v)| (k.clone(), v.packets))
            .collect::<Vec<_>>(),
        a.shared.errors.lock(),
        b.events()
            .iter()
            .filter(|e| !matches!(e, SfuEvent::Candidate(_)))
            .map(|e| match e {
                SfuEvent::Offer { .. } => "offer".to_owned(),
                SfuEvent::Answer { .. } => "answer".to_owned(),
                e => format!("{e:?}"),
            })
            .collect::<Vec<_>>()
    );
    assert!(
        a.shared.offers_seen.lock().len() >= seen + 2,
        "the SFU offered again after the rollback"
    );
    assert!(b.events().iter().any(|e| matches!(
        e,
        SfuEvent::TrackPublished {
            participant: ParticipantId(1),
            kind: TrackKind::Screen,
            stream_id,
            ..
        } if stream_id == "1-screen"
    )));
}

/// A subscription made while the subscriber's own offer is outstanding (glare) starts at a
/// keyframe. Its leg is not negotiated until the SFU's next offer is answered; what the
/// forwarder wrote to it before that was lost, the keyframe included, and the subscriber
/// got frames it could not decode until it asked for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_made_in_glare_starts_at_a_keyframe() {
    let sfu = Sfu::new(config()).expect("sfu");
    let mut b = connect(&sfu, 2, LISTEN).await;
    // B is about to share its screen: its offer is set locally but not yet sent...
    b.add_screen().await;
    let offer = b.prepare_offer().await;
    let seen = b.shared.offers_seen.lock().len();
    // ...when A turns its camera on: the SFU offers it to B, and B (impolite) ignores that.
    let a = connect(
        &sfu,
        1,
        Publish {
            video: true,
            ..LISTEN
        },
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || b
            .shared
            .offers_seen
            .lock()
            .len()
            > seen)
        .await,
        "the SFU offered A's camera to B"
    );
    // B's offer wins. B then takes 1.5 s over the SFU's answer and its next offer while A's
    // camera (a keyframe every 0.5 s) keeps coming.
    let hold = b.hold_negotiation().await;
    b.send_offer(offer)
        .await
        .expect("the client's offer wins the glare");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(hold);
    assert!(
        eventually(Duration::from_secs(10), || b.count(1, "camera") > 10).await,
        "A's camera reaches B after the second exchange: {:?}",
        b.shared.errors.lock()
    );
    let received = b.received();
    let (_, camera) = received
        .iter()
        .find(|(id, _)| id.starts_with("1-camera-"))
        .expect("A's camera at B");
    assert!(
        camera.seqs[0].2,
        "B's first packet of A's camera is a keyframe: {:?}",
        &camera.seqs[..camera.seqs.len().min(5)]
    );
    assert!(
        a.shared.keyframe_requests.load(Ordering::Relaxed) >= 1,
        "the SFU asked A for the keyframe B starts at"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_levels_drive_speaking_and_the_active_speaker() {
    let sfu = Sfu::new(config()).expect("sfu");
    let speaker = connect(
        &sfu,
        1,
        Publish {
            audio: true,
            ..LISTEN
        },
    )
    .await;
    let listener = connect(&sfu, 2, LISTEN).await;
    assert!(eventually(Duration::from_secs(10), || listener.count(1, "audio") > 10).await);
    let speaking = |on: bool| move |e: &SfuEvent| matches!(e, SfuEvent::Speaking { participant: ParticipantId(1), speaking } if *speaking == on);
    assert!(
        !has_event(&listener, speaking(true)),
        "silence is not speech"
    );

    speaker
        .audio_level
        .store(10, std::sync::atomic::Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(3), || has_event(
            &listener,
            speaking(true)
        ))
        .await
    );
    assert!(has_event(&listener, |e| matches!(
        e,
        SfuEvent::ActiveSpeaker {
            participant: Some(ParticipantId(1))
        }
    )));
    assert!(
        has_event(&speaker, speaking(true)),
        "the speaker is told too"
    );

    speaker
        .audio_level
        .store(127, std::sync::atomic::Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(3), || has_event(
            &listener,
            speaking(false)
        ))
        .await
    );
    speaker.close().await;
    listener.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_speak_stops_audio_at_once_and_kick_frees_everything() {
    let sfu = Sfu::new(config()).expect("sfu");
    let a = connect(&sfu, 1, AV).await;
    let b = connect(&sfu, 2, LISTEN).await;
    assert!(
        eventually(Duration::from_secs(10), || b.count(1, "audio") > 10
            && b.count(1, "camera") > 5)
        .await
    );

    sfu.set_grants(
        ParticipantId(1),
        Grants {
            speak: false,
            ..Grants::ALL
        },
    )
    .expect("member");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (audio, video) = (b.count(1, "audio"), b.count(1, "camera"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        b.count(1, "audio"),
        audio,
        "no audio within 1 s of losing SPEAK"
    );
    assert!(b.count(1, "camera") > video + 10, "video continues");
    assert!(sfu.stats().packets_gated > 0);

    // SPEAK back: audio resumes, no renegotiation needed.
    sfu.set_grants(ParticipantId(1), Grants::ALL)
        .expect("member");
    assert!(eventually(Duration::from_secs(3), || b.count(1, "audio") > audio + 10).await);
    // Server mute and deafen work the same way.
    sfu.set_deaf(ParticipantId(2), true).expect("member");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let audio = b.count(1, "audio");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.count(1, "audio"), audio, "deafened: no audio");
    sfu.set_deaf(ParticipantId(2), false).expect("member");

    sfu.kick(ParticipantId(2), "bye").expect("member");
    assert!(
        eventually(Duration::from_secs(5), || has_event(&b, |e| matches!(
            e,
            SfuEvent::Left(LeaveReason::Kicked { .. })
        )))
        .await
    );
    assert!(eventually(Duration::from_secs(5), || sfu.stats().peer_connections == 1).await);
    assert_eq!(sfu.participants(ROOM), vec![ParticipantId(1)]);
    assert!(matches!(
        sfu.kick(ParticipantId(2), "again"),
        Err(VoiceError::NotInRoom)
    ));
    assert!(
        eventually(Duration::from_secs(15), || b.connection_state()
            != webrtc::peer_connection::RTCPeerConnectionState::Connected)
        .await,
        "the kicked client's connection goes down"
    );
    a.close().await;
    b.close().await;
    drop((a, b));
    assert!(all_released(&sfu).await, "{:?}", sfu.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_other_calls_keep_flowing() {
    let sfu = Sfu::new(VoiceConfig {
        limits: Limits {
            max_video_tracks: 1,
            ice_connect_timeout: Duration::from_secs(4),
            signal_burst: 20,
            signals_per_sec: 5,
            ..Limits::default()
        },
        ..config()
    })
    .expect("sfu");
    let a = connect(
        &sfu,
        1,
        Publish {
            audio: true,
            ..LISTEN
        },
    )
    .await;
    let b = connect(&sfu, 2, LISTEN).await;
    assert!(eventually(Duration::from_secs(10), || b.count(1, "audio") > 10).await);
    let flowing_before = b.count(1, "audio");

    let room2 = RoomKey(8);
    // Malformed and oversized SDP; an answer with no offer out; a bad candidate.
    let j = sfu.join(request(room2, 10)).await.expect("join");
    let p = &j.participant;
    let offer = |sdp: String| Signal::Offer {
        sdp,
        tracks: vec![],
    };
    assert!(matches!(
        p.signal(offer("v=0\r\nnonsense".into())).await,
        Err(VoiceError::MalformedSdp(_))
    ));
    assert!(matches!(
        p.signal(offer("v=0\r\n".repeat(20_000))).await,
        Err(VoiceError::SdpTooLarge { .. })
    ));
    assert!(matches!(
        p.signal(Signal::Answer { sdp: "v=0".into() }).await,
        Err(VoiceError::NoPendingOffer)
    ));
    drop(j);

    // Too many tracks: camera and screen with a limit of one video track.
    let mut two_videos = Client::new(
        sfu.join(request(room2, 11)).await.expect("join"),
        Publish {
            video: true,
            screen: true,
            ..LISTEN
        },
    )
    .await;
    assert!(matches!(
        two_videos.offer().await,
        Err(VoiceError::TooManyTracks { .. })
    ));
    two_videos.close().await;
    drop(two_videos);

    // A client that never completes ICE is removed after the timeout.
    let mut silent = sfu.join(request(room2, 12)).await.expect("join");
    let left = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(e) = silent.events.recv().await {
            if let SfuEvent::Left(reason) = e {
                return Some(reason);
            }
        }
        None
    })
    .await;
    assert_eq!(left.ok().flatten(), Some(LeaveReason::IceTimeout));

    // Wrong ICE credentials and a wrong DTLS fingerprint: the connection never comes up
    // (ICE timeout) or fails (DTLS), and the participant is removed either way. (The ufrag:
    // the client's checks then name one its offer did not, and no connection takes them.
    // A wrong ice-pwd alone is not fatal: the client's checks are signed with the SFU's
    // password, and str0m keeps a pair its peer keeps checking even when our own checks
    // are refused.)
    for (id, what) in [(16, "ice-ufrag"), (17, "fingerprint")] {
        let mut bad = Client::new(sfu.join(request(room2, id)).await.expect("join"), LISTEN).await;
        let sdp = bad.prepare_offer().await;
        let sdp = sdp
            .lines()
            .map(|l| {
                if what == "ice-ufrag" && l.starts_with("a=ice-ufrag:") {
                    "a=ice-ufrag:wrongufrag".to_owned()
                } else if what == "fingerprint" && l.starts_with("a=fingerprint:sha-256 ") {
                    format!("a=fingerprint:sha-256 {}", vec!["AB"; 32].join(":"))
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n";
        bad.send_offer(sdp).await.expect("the SDP itself is fine");
        let removed = eventually(Duration::from_secs(25), || bad.left().is_some()).await;
        assert!(removed, "{what}: still in the room");
        assert!(
            matches!(
                bad.left(),
                Some(LeaveReason::IceTimeout | LeaveReason::ConnectionFailed)
            ),
            "{what}: {:?}",
            bad.left()
        );
        eprintln!("{what}: {:?}", bad.left());
        bad.close().await;
    }

    // A full room, and a join without CONNECT.
    let mut limited = request(ROOM, 13);
    limited.user_limit = Some(2);
    assert!(matches!(sfu.join(limited).await, Err(VoiceError::RoomFull)));
    let mut refused = request(room2, 14);
    refused.grants = Grants {
        connect: false,
        ..Grants::ALL
    };
    assert!(matches!(
        sfu.join(refused).await,
        Err(VoiceError::NotPermitted)
    ));

    // A signalling flood closes the flooder.
    let mut flood = sfu.join(request(room2, 15)).await.expect("join");
    let mut flooded = false;
    for _ in 0..40 {
        let c = hearth_voice::IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        if let Err(VoiceError::SignalFlood) = flood.participant.signal(Signal::Candidate(c)).await {
            flooded = true;
            break;
        }
    }
    assert!(flooded);
    let left = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = flood.events.recv().await {
            if let SfuEvent::Left(reason) = e {
                return Some(reason);
            }
        }
        None
    })
    .await;
    assert_eq!(left.ok().flatten(), Some(LeaveReason::SignalFlood));

    // The established call never noticed.
    assert!(
        eventually(Duration::from_secs(3), || b.count(1, "audio")
            > flowing_before + 50)
        .await
    );
    assert_eq!(sfu.participants(ROOM).len(), 2);
    a.close().await;
    b.close().await;
    drop((a, b, silent, flood));
    assert!(all_released(&sfu).await, "{:?}", sfu.stats());
}

fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_failed_joins_leave_nothing_behind() {
    let sfu = Sfu::new(VoiceConfig {
        udp_ports: Some((42_000, 42_099)),
        ..config()
    })
    .expect("sfu");
    let runtime_tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let baseline_tasks = runtime_tasks();
    let mut rss_after_warmup = 0;
    for round in 0..100u64 {
        let joins = (0..10u64).map(|i| {
            let sfu = sfu.clone();
            async move {
                let id = round * 10 + i + 1_000;
                if i % 5 == 4 {
                    // Refused before anything is made.
                    let mut r = request(RoomKey(id), id);
                    r.user_limit = Some(0);
                    assert!(matches!(sfu.join(r).await, Err(VoiceError::RoomFull)));
                    return;
                }
                let j = sfu.join(request(RoomKey(id), id)).await.expect("join");
                let r = j
                    .participant
                    .signal(Signal::Offer {
                        sdp: "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\n".into(),
                        tracks: vec![],
                    })
                    .await;
                assert!(r.is_err());
            }
        });
        futures::future::join_all(joins).await;
        if round == 19 {
            assert!(all_released(&sfu).await, "{:?}", sfu.stats());
            rss_after_warmup = rss_kib().unwrap_or(0);
        }
    }
    assert!(all_released(&sfu).await, "{:?}", sfu.stats());
    assert!(
        eventually(Duration::from_secs(10), || runtime_tasks()
            <= baseline_tasks)
        .await,
        "webrtc-rs tasks linger: {} alive, {} before",
        runtime_tasks(),
        baseline_tasks
    );
    let s = sfu.stats();
    assert_eq!((s.joins, s.joins_refused), (800, 200));
    let growth = rss_kib().unwrap_or(0).saturating_sub(rss_after_warmup);
    eprintln!("RSS growth over the last 800 failed joins: {growth} KiB");
    // Other tests run in this process at the same time, so this is generous.
    assert!(growth < 16 * 1024, "RSS grew {growth} KiB");
}

#[test]
fn turn_credentials_match_a_known_vector() {
    // Computed independently: base64(HMAC-SHA1("s3cret", "1700003600:42")).
    let c = turn_credentials(b"s3cret", ParticipantId(42), 1_700_000_000, 3600);
    assert_eq!(c.username, "1700003600:42");
    assert_eq!(c.password, "DfmaKoWkE6K1Hjz2w5FmaV3sBxs=");
    // RFC 2202 test case 2.
    assert_eq!(
        turn_password(b"Jefe", "what do ya want for nothing?"),
        "7/zfauXrL6LSdBbV8YTfnCWafHk="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_announce_the_public_address() {
    let sfu = Sfu::new(VoiceConfig {
        public_ips: vec![std::net::IpAddr::from([127, 0, 0, 2])],
        ..config()
    })
    .expect("sfu");
    let mut c = Client::new(joined(&sfu, 1).await, LISTEN).await;
    c.offer().await.expect("offer");
    let announced = eventually(Duration::from_secs(5), || {
        c.events().iter().any(|e| match e {
            SfuEvent::Candidate(x) => x.candidate.contains(" 127.0.0.2 "),
            SfuEvent::Answer { sdp } => sdp.contains(" 127.0.0.2 "),
            _ => false,
        })
    })
    .await;
    assert!(announced, "{:?}", c.events());
    assert!(
        !c.events()
            .iter()
            .any(|e| matches!(e, SfuEvent::Candidate(x) if x.candidate.contains(" 127.0.0.1 ")))
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_hands_out_turn_credentials() {
    let sfu = Sfu::new(VoiceConfig {
        turn: Some(hearth_voice::TurnConfig {
            urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            secret: b"s3cret".to_vec(),
            ttl: Duration::from_secs(600),
        }),
        ..config()
    })
    .expect("sfu");
    let j = joined(&sfu, 42).await;
    let server = &j.ice_servers[0];
    let (expiry, user) = server.username.split_once(':').expect("expiry:user");
    assert_eq!(user, "42");
    assert_eq!(
        server.credential,
        turn_password(b"s3cret", &server.username)
    );
    let expiry: u64 = expiry.parse().expect("unix time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!((now + 590..=now + 610).contains(&expiry));
}

/// Between the SFU and its clients: forwards every datagram, but drops one video packet in
/// 25 on the way to a client, and counts what comes back for those: the same SSRC and
/// sequence number again, or a packet of a repair flow (a payload type neither the audio's
/// nor the video's: RTX). RTP headers travel in the clear under SRTP, so this needs no keys.
#[derive(Default)]
struct Lossy {
    video_pt: u8,
    audio_pt: u8,
    dropped: parking_lot::Mutex<std::collections::HashSet<(u32, u16)>>,
    counter: std::sync::atomic::AtomicU64,
    repaired: std::sync::atomic::AtomicU64,
}

impl Lossy {
    /// Whether to pass a datagram on its way to a client.
    fn pass(&self, d: &[u8]) -> bool {
        // RTP (not RTCP: its packet types are 200–207 with the marker bit's place set).
        if d.len() < 12 || d[0] >> 6 != 2 || (192..=223).contains(&d[1]) {
            return true;
        }
        let pt = d[1] & 0x7f;
        let seq = u16::from_be_bytes([d[2], d[3]]);
        let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
        // Padding-only packets on the repair flow are bandwidth probes, not repairs.
        let padding = d[0] & 0x20 != 0;
        if self.dropped.lock().contains(&(ssrc, seq))
            || (pt != self.video_pt && pt != self.audio_pt && !padding)
        {
            self.repaired.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if pt == self.video_pt && self.counter.fetch_add(1, Ordering::Relaxed) % 25 == 24 {
            self.dropped.lock().insert((ssrc, seq));
            return false;
        }
        true
    }
}

/// Relays between clients (on 127.0.0.1) and the SFU (bound on 127.0.0.1:`port`, announcing
/// 127.0.0.2): listens on 127.0.0.2:`port`, one upstream socket per client.
async fn lossy_relay(port: u16, lossy: std::sync::Arc<Lossy>) -> tokio::task::JoinHandle<()> {
    use std::sync::Arc;
    use tokio::net::UdpSocket;
    let front = Arc::new(
        UdpSocket::bind(("127.0.0.2", port))
            .await
            .expect("the relay's port"),
    );
    let sfu: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    tokio::spawn(async move {
        let mut ups: std::collections::HashMap<std::net::SocketAddr, Arc<UdpSocket>> =
            Default::default();
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else {
                return;
            };
            let up = match ups.get(&client) {
                Some(up) => up.clone(),
                None => {
                    let up = Arc::new(UdpSocket::bind("127.0.0.2:0").await.expect("upstream"));
                    ups.insert(client, up.clone());
                    let (up2, front2, lossy) = (up.clone(), front.clone(), lossy.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        while let Ok((n, _)) = up2.recv_from(&mut buf).await {
                            if lossy.pass(&buf[..n]) {
                                let _ = front2.send_to(&buf[..n], client).await;
                            }
                        }
                    });
                    up
                }
            };
            let _ = up.send_to(&buf[..n], sfu).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_video_is_retransmitted_on_nack() {
    // The relay takes the room's port (the range's first) on the announced address.
    let sfu = Sfu::new(VoiceConfig {
        udp_ports: Some((44_100, 44_149)),
        public_ips: vec![std::net::IpAddr::from([127, 0, 0, 2])],
        ..config()
    })
    .expect("sfu");
    let lossy = std::sync::Arc::new(Lossy {
        video_pt: 96,
        audio_pt: 111,
        ..Lossy::default()
    });
    let relay = lossy_relay(44_100, lossy.clone()).await;
    let a = connect(&sfu, 1, AV).await;
    let b = connect(&sfu, 2, LISTEN).await;
    assert!(
        eventually(Duration::from_secs(10), || b.count(1, "camera") > 100).await,
        "video flows through the relay: {:?}",
        b.shared.errors.lock()
    );
    let repaired = eventually(Duration::from_secs(10), || {
        lossy.repaired.load(Ordering::Relaxed) >= 3
    })
    .await;
    assert!(
        repaired,
        "{} video packets dropped on the way to the client, {} retransmitted",
        lossy.dropped.lock().len(),
        lossy.repaired.load(Ordering::Relaxed)
    );
    a.close().await;
    b.close().await;
    relay.abort();
}
