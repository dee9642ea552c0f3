//! `voice-str0m-server`: a minimal audio forwarder on str0m, started by
//! `voice-str0m` as its own process, to measure what forwarding costs on
//! another Rust WebRTC stack than the webrtc-rs that `crates/voice` uses
//! (issue 9: "if a measured reason favours another Rust WebRTC stack such
//! as str0m, record the measurement"). It is a measuring instrument, not a
//! product: one thread, one UDP socket for every peer connection, rooms
//! fixed at join time.
//!
//! What it does per packet is what an SFU must do: ICE, DTLS and SRTP on
//! every connection, RTCP (receiver and sender reports, TWCC feedback where
//! negotiated) by str0m, and each received Opus packet written, payload
//! and extensions (audio level) untouched, to every other member's send
//! stream in RTP mode (no depacketizing), with str0m's send-side bandwidth
//! estimation on (Hearth's SFU runs its estimator on every connection too).
//! What it leaves out is the rest of Hearth's SFU: permissions,
//! renegotiation, simulcast, speaking detection, the gateway.
//!
//! Signalling is one JSON line per join on stdin, `{"id", "room", "offer"}`,
//! answered on stdout with `{"id", "answer"}` (or `{"id", "error"}`); the
//! first line out is `ready <udp address>`. A client offers its microphone
//! (sendonly) and one recvonly audio m-line per other member of its room,
//! so the server never renegotiates: each member's audio goes to another
//! on the next free one of that one's m-lines (sendonly on the server's
//! side), given out when either joins, whichever is later.
//!
//! With `--str0m-batch` each round's datagrams go out in one `sendmmsg`
//! instead of one `sendto` each: what a single-socket design makes possible
//! and webrtc-rs's one socket per connection does not.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::io::{BufRead, ErrorKind, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn};
use serde_json::{Value, json};
use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::media::{Direction, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

/// Datagrams read per round (one `recvfrom` each), and sent per `sendmmsg`.
const BATCH: usize = 64;

/// A joined member, built on the signalling thread.
struct Joined {
    room: u64,
    rtc: Rtc,
}

struct Client {
    rtc: Rtc,
    room: u64,
    alive: bool,
    /// The server's sendonly m-lines not yet given to another member.
    free: VecDeque<Mid>,
    /// Which of this client's m-lines carries each other member's audio.
    out: HashMap<usize, Mid>,
    next_timeout: Instant,
}

/// Runs the server until stdin closes. `batch`: sendmmsg.
pub fn serve(batch: bool) -> Result<(), String> {
    str0m::crypto::from_feature_flags().install_process_default();
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel::<Joined>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        signalling(local, tx);
        let _ = done_tx.send(());
    });
    println!("ready {local}");
    let _ = std::io::stdout().flush();
    Forwarder::new(rx, socket, local, batch).run(&done_rx);
    Ok(())
}

/// Reads joins from stdin; answers each on stdout.
fn signalling(local: SocketAddr, tx: mpsc::Sender<Joined>) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(req) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let id = req["id"].clone();
        let reply = match join(local, &req) {
            Ok((joined, answer)) => {
                let _ = tx.send(joined);
                json!({"id": id, "answer": answer})
            }
            Err(e) => json!({"id": id, "error": e}),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
}

fn join(local: SocketAddr, req: &Value) -> Result<(Joined, String), String> {
    let room = req["room"].as_u64().ok_or("no room")?;
    // The forwarder takes the DTLS client role (an actpass offer allows
    // either). str0m answers actpass as passive, and then the handshake waits
    // for the client to finish nominating a pair, which webrtc-rs does on a
    // 200 ms tick: joins took ~515 ms instead of ~310. As the active side,
    // str0m starts DTLS the moment its own ICE is connected.
    let offer = req["offer"]
        .as_str()
        .ok_or("no offer")?
        .replace("a=setup:actpass", "a=setup:passive");
    let offer = SdpOffer::from_sdp_string(&offer).map_err(|e| e.to_string())?;
    // Send-side bandwidth estimation on, as Hearth's SFU runs its estimator
    // on every connection (it chooses video layers).
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .enable_bwe(Some(Bitrate::kbps(1_000)))
        .build(Instant::now());
    let host = Candidate::host(local, "udp").map_err(|e| e.to_string())?;
    rtc.add_local_candidate(host).ok_or("candidate refused")?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| e.to_string())?;
    Ok((Joined { room, rtc }, answer.to_sdp_string()))
}

struct Forwarder {
    joins: mpsc::Receiver<Joined>,
    socket: UdpSocket,
    local: SocketAddr,
    batch: bool,
    clients: Vec<Client>,
    rooms: HashMap<u64, Vec<usize>>,
    by_source: HashMap<SocketAddr, usize>,
    /// This round's datagrams to send.
    sends: Vec<Transmit>,
    events: Vec<Event>,
    /// sendmmsg's message headers, allocated once.
    headers: MultiHeaders<SockaddrIn>,
}

impl Forwarder {
    fn new(
        joins: mpsc::Receiver<Joined>,
        socket: UdpSocket,
        local: SocketAddr,
        batch: bool,
    ) -> Forwarder {
        Forwarder {
            joins,
            socket,
            local,
            batch,
            clients: Vec::new(),
            rooms: HashMap::new(),
            by_source: HashMap::new(),
            sends: Vec::with_capacity(1024),
            events: Vec::new(),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    fn run(&mut self, done: &mpsc::Receiver<()>) {
        let mut bufs = vec![[0u8; 2048]; BATCH];
        loop {
            while let Ok(j) = self.joins.try_recv() {
                self.add(j);
            }
            if done.try_recv().is_ok() {
                return;
            }
            let now = Instant::now();
            let mut next = now + Duration::from_millis(5);
            for i in 0..self.clients.len() {
                if !self.clients[i].alive {
                    continue;
                }
                if self.clients[i].next_timeout <= now {
                    let _ = self.clients[i].rtc.handle_input(Input::Timeout(now));
                    self.drain(i);
                }
                next = next.min(self.clients[i].next_timeout);
            }
            self.flush();
            let wait_ms = next
                .saturating_duration_since(Instant::now())
                .as_micros()
                .div_ceil(1000);
            if !self.wait_readable(wait_ms.min(5) as u16) {
                continue;
            }
            // Everything queued now, then forward and send it all.
            for _ in 0..4 {
                let mut got = 0;
                for buf in bufs.iter_mut() {
                    match self.socket.recv_from(buf) {
                        Ok((n, source)) => {
                            got += 1;
                            self.receive(source, &buf[..n]);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                self.flush();
                if got < BATCH {
                    break;
                }
            }
        }
    }

    /// poll(2) on the socket for up to `ms`: whether it is readable.
    fn wait_readable(&self, ms: u16) -> bool {
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, ms), Ok(n) if n > 0)
    }

    fn add(&mut self, j: Joined) {
        let idx = self.clients.len();
        self.clients.push(Client {
            rtc: j.rtc,
            room: j.room,
            alive: true,
            free: VecDeque::new(),
            out: HashMap::new(),
            next_timeout: Instant::now(),
        });
        let members = self.rooms.entry(j.room).or_default();
        members.push(idx);
        // Everyone already in the room gets a send m-line for the new member
        // (the new one gets theirs when str0m reports its media, on connecting).
        for m in members.clone() {
            self.pair(m);
        }
    }

    /// Gives each member of `idx`'s room who has none a free send m-line of
    /// `idx`'s, to carry that member's audio to `idx`.
    fn pair(&mut self, idx: usize) {
        let Some(members) = self.rooms.get(&self.clients[idx].room) else {
            return;
        };
        for &m in members {
            let c = &mut self.clients[idx];
            if m == idx || c.out.contains_key(&m) {
                continue;
            }
            let Some(mid) = c.free.pop_front() else {
                return;
            };
            c.out.insert(m, mid);
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let idx = match self.by_source.get(&source) {
            Some(&i) => i,
            None => {
                // A client's first check can come in before its join reached
                // this loop: take the joins waiting, then look again.
                while let Ok(j) = self.joins.try_recv() {
                    self.add(j);
                }
                let Some(i) = self
                    .clients
                    .iter()
                    .position(|c| c.alive && c.rtc.accepts(&input))
                else {
                    return;
                };
                self.by_source.insert(source, i);
                i
            }
        };
        if self.clients[idx].rtc.handle_input(input).is_err() {
            self.clients[idx].alive = false;
            return;
        }
        self.drain(idx);
    }

    /// Takes `idx`'s output: datagrams to the send queue, events handled
    /// (a packet forwarded to the room, whose members are drained in turn).
    fn drain(&mut self, idx: usize) {
        let mut events = std::mem::take(&mut self.events);
        loop {
            match self.clients[idx].rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.clients[idx].next_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => self.sends.push(t),
                Ok(Output::Event(e)) => events.push(e),
                Err(_) => {
                    self.clients[idx].alive = false;
                    break;
                }
            }
        }
        for e in events.drain(..) {
            match e {
                Event::MediaAdded(m) if m.direction == Direction::SendOnly => {
                    self.clients[idx].free.push_back(m.mid);
                    self.pair(idx);
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    self.clients[idx].alive = false;
                }
                Event::RtpPacket(p) => self.forward(idx, p),
                _ => {}
            }
        }
        self.events = events;
    }

    fn forward(&mut self, from: usize, p: str0m::rtp::RtpPacket) {
        let room = self.clients[from].room;
        let Some(members) = self.rooms.get(&room) else {
            return;
        };
        let members = members.clone();
        for m in members {
            if m == from || !self.clients[m].alive {
                continue;
            }
            let Some(&mid) = self.clients[m].out.get(&from) else {
                continue;
            };
            let mut api = self.clients[m].rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            let write = RtpWrite::new(
                p.header.payload_type,
                p.seq_no,
                p.header.timestamp,
                p.timestamp,
                p.payload.clone(),
            )
            .marker(p.header.marker)
            .ext_vals(p.header.ext_vals.clone());
            tx.write_rtp(write);
            self.drain(m);
        }
    }

    fn flush(&mut self) {
        if self.sends.is_empty() {
            return;
        }
        if self.batch {
            for chunk in self.sends.chunks(BATCH) {
                sendmmsg(&self.socket, &mut self.headers, chunk);
            }
        } else {
            for t in &self.sends {
                let _ = self.socket.send_to(&t.contents, t.destination);
            }
        }
        self.sends.clear();
    }
}

/// One `sendmmsg` for up to [`BATCH`] IPv4 datagrams (the probe binds
/// 127.0.0.1); a datagram the kernel does not take is dropped, as a full
/// socket buffer would drop it.
fn sendmmsg(socket: &UdpSocket, headers: &mut MultiHeaders<SockaddrIn>, sends: &[Transmit]) {
    let mut rest = sends;
    while !rest.is_empty() {
        let slices: Vec<[IoSlice<'_>; 1]> =
            rest.iter().map(|t| [IoSlice::new(&t.contents)]).collect();
        let addrs: Vec<Option<SockaddrIn>> = rest
            .iter()
            .map(|t| match t.destination {
                SocketAddr::V4(a) => Some(SockaddrIn::from(a)),
                SocketAddr::V6(_) => None,
            })
            .collect();
        let sent = nix::sys::socket::sendmmsg(
            socket.as_raw_fd(),
            headers,
            &slices,
            &addrs,
            [],
            MsgFlags::empty(),
        )
        .map(|r| r.count())
        .unwrap_or(0);
        // Skip one the kernel refused.
        rest = &rest[sent.max(1).min(rest.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_voice::peer;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
    use webrtc::peer_connection::PeerConnectionEventHandler;

    /// Counts the packets of every remote track.
    struct Count(Arc<AtomicU64>);

    #[async_trait::async_trait]
    impl PeerConnectionEventHandler for Count {
        async fn on_track(&self, track: Arc<dyn TrackRemote>) {
            let n = self.0.clone();
            tokio::spawn(async move {
                while let Some(ev) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(p) = ev
                        && crate::voice_common::mic_stamp(&p.payload).is_some()
                    {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }

    /// Two real webrtc-rs peers in one room, both speaking, through the
    /// forwarder (batched sends): each hears the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_peers_hear_each_other() {
        str0m::crypto::from_feature_flags().install_process_default();
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let local = socket.local_addr().expect("local address");
        let (tx, rx) = mpsc::channel::<Joined>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            Forwarder::new(rx, socket, local, true).run(&done_rx);
        });
        let tally = crate::voice_common::Tally::new();
        let mut peers = Vec::new();
        for i in 0..2 {
            let heard = Arc::new(AtomicU64::new(0));
            let pc = peer::client(Arc::new(Count(heard.clone())))
                .await
                .expect("client");
            let mut mic = crate::voice_common::Mic::add(&pc, i).await.expect("mic");
            peer::add_recvonly(&pc, rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio)
                .await
                .expect("recvonly m-line");
            let offer = crate::voice_common::offer_sdp(&pc).await.expect("offer");
            let (joined, answer) =
                join(local, &json!({"id": i, "room": 7, "offer": offer})).expect("join");
            tx.send(joined).expect("forwarder running");
            peer::accept(&pc, answer).await.expect("answer");
            let tally = tally.clone();
            let speaking = tokio::spawn(async move {
                let mut every = crate::voice_common::Mic::clock();
                loop {
                    every.tick().await;
                    mic.tick(&tally).await;
                }
            });
            peers.push((pc, heard, speaking));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while peers.iter().any(|(_, h, _)| h.load(Ordering::Relaxed) < 25) {
            assert!(
                Instant::now() < deadline,
                "heard {:?} packets in 10 s",
                peers
                    .iter()
                    .map(|(_, h, _)| h.load(Ordering::Relaxed))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (pc, _, speaking) in &peers {
            speaking.abort();
            let _ = pc.close().await;
        }
        drop(tx);
        done_tx.send(()).expect("forwarder running");
        server.join().expect("forwarder thread");
    }
}
