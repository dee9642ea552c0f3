//! A room's media loop: one task owning one UDP socket (per host address) and every
//! participant's connection in the room, so forwarding is a loop over plain data, with no
//! lock and no queue between a publisher and its subscribers.
//!
//! Each datagram goes to the connection that owns its source address (learned from the
//! first STUN check that str0m's `accepts` recognises by its ICE credentials). A received
//! RTP packet is written, renumbered, to every subscriber's send stream in turn, and each
//! connection's output (datagrams, events) is drained after anything that can produce
//! some. The loop ends when its room has no members left; its port goes back to the range.
//!
//! A room is bounded by one core: the brief's rooms (tens of people) are far from it, and
//! rooms spread over the runtime's workers.

use crate::codec;
use crate::conn::Conn;
use crate::engine;
use crate::error::VoiceError;
use crate::ports::PortLease;
use crate::sfu::{Member, SfuInner};
use crate::speaking::SpeakerState;
use crate::track::{Incoming, Track};
use crate::types::{LeaveReason, RoomKey, SfuEvent, Signal, TrackKind};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use std::collections::{HashMap, VecDeque};
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, ready};
use std::time::{Duration, Instant, SystemTime};
use str0m::bwe::BweKind;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo};
use str0m::{Event, IceConnectionState, Input, Output};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Datagrams read per wake before the loop runs its timers and reads its commands again.
const READ_BATCH: usize = 64;

/// How often speaking transitions are announced.
const TICK: Duration = Duration::from_millis(100);

/// The room socket's send and receive buffers. On loopback (and generally) a datagram's
/// memory is charged to the sending socket until its receiver reads it, so one socket
/// writing to every participant of a room needs the buffer webrtc-rs's one socket per
/// participant had between them. The kernel caps it at `net.core.{w,r}mem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// Datagrams held while the socket's buffer is full, before new ones are dropped.
const BACKLOG: usize = 8192;

/// What the rest of the SFU asks of a room's loop.
pub(crate) enum Command {
    /// A member admitted to the room: make its connection.
    Add(Arc<Member>),
    /// A client signal for the member with this serial; the result is the reply.
    Signal(u64, Signal, oneshot::Sender<Result<(), VoiceError>>),
    /// Close the member with this serial.
    Close(u64, LeaveReason),
}

struct Socket {
    udp: UdpSocket,
    local: SocketAddr,
}

/// A datagram read from a room socket.
struct Datagram {
    len: usize,
    source: SocketAddr,
    /// When the kernel received it (`SO_TIMESTAMPNS`), if it said.
    arrived: Option<SystemTime>,
}

impl Socket {
    /// Reads one datagram with its kernel receive timestamp, without waiting.
    fn try_recv(&self, buf: &mut [u8], cmsg: &mut Vec<u8>) -> std::io::Result<Datagram> {
        self.udp.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(&mut *buf)];
            let msg = recvmsg::<SockaddrStorage>(
                self.udp.as_raw_fd(),
                &mut iov,
                Some(&mut *cmsg),
                MsgFlags::empty(),
            )
            .map_err(std::io::Error::from)?;
            let source = msg.address.as_ref().and_then(std_addr).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no source address")
            })?;
            let mut arrived = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmTimestampns(ts) = c {
                        let (Ok(secs), Ok(nanos)) =
                            (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec()))
                        else {
                            continue;
                        };
                        arrived = Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos));
                    }
                }
            }
            Ok(Datagram {
                len: msg.bytes,
                source,
                arrived,
            })
        })
    }
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

struct Room {
    sfu: Arc<SfuInner>,
    key: RoomKey,
    serial: u64,
    sockets: Vec<Socket>,
    _port: PortLease,
    conns: Vec<Conn>,
    /// Remote address → the member serial whose connection it is.
    by_source: HashMap<SocketAddr, u64>,
    tracks: Vec<Track>,
    speakers: SpeakerState,
    /// Datagrams to send, and events to handle (by member serial), from drained output.
    sends: Vec<Transmit>,
    /// Datagrams the socket would not take yet (its buffer full): sent, in order, once it is
    /// writable again.
    backlog: VecDeque<Transmit>,
    events: VecDeque<(u64, Event)>,
    /// Set when the datagram being handled was forwarded to someone: its delay is recorded
    /// once its copies are sent.
    forwarded: bool,
}

/// Binds the room's socket(s) on a port of the range and starts its loop.
pub(crate) fn start(
    sfu: Arc<SfuInner>,
    key: RoomKey,
    serial: u64,
) -> Result<mpsc::UnboundedSender<Command>, VoiceError> {
    let (sockets, port) = bind(&sfu)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Room {
        sfu: sfu.clone(),
        key,
        serial,
        sockets,
        _port: port,
        conns: Vec::new(),
        by_source: HashMap::new(),
        tracks: Vec::new(),
        speakers: SpeakerState::default(),
        sends: Vec::new(),
        backlog: VecDeque::new(),
        events: VecDeque::new(),
        forwarded: false,
    };
    sfu.tasks.spawn(room.run(rx));
    Ok(tx)
}

fn bind(sfu: &SfuInner) -> Result<(Vec<Socket>, PortLease), VoiceError> {
    let mut tried = Vec::new();
    // A port of the range may be taken by another process: try a few.
    for _ in 0..8 {
        let lease = sfu.ports.lease(&tried).ok_or(VoiceError::NoPorts)?;
        let mut sockets = Vec::new();
        let mut error = None;
        for ip in &sfu.cfg.host_addresses {
            match bind_one(SocketAddr::new(*ip, lease.port)) {
                Ok(s) => sockets.push(s),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        match error {
            None => return Ok((sockets, lease)),
            Some(e) if lease.port != 0 => {
                tracing::debug!(port = lease.port, error = %e, "port unusable, trying another");
                tried.push(lease.port);
            }
            Some(e) => return Err(VoiceError::Config(format!("cannot bind: {e}"))),
        }
    }
    Err(VoiceError::NoPorts)
}

fn bind_one(addr: SocketAddr) -> std::io::Result<Socket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel's limit may be lower.
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    s.bind(&addr.into())?;
    // Receive timestamps, for the SFU's own delay (`delay`): time queued in the socket is
    // part of what the SFU adds. Best effort: without them that time is not counted.
    if let Err(e) = setsockopt(&s, sockopt::ReceiveTimestampns, &true) {
        tracing::debug!(error = %e, "no receive timestamps on the room socket");
    }
    let std: std::net::UdpSocket = s.into();
    std.set_nonblocking(true)?;
    let local = std.local_addr()?;
    Ok(Socket {
        udp: UdpSocket::from_std(std)?,
        local,
    })
}

/// What woke the loop.
enum Wake {
    Command(Option<Command>),
    /// A datagram and the index of the socket it came on.
    Datagram(std::io::Result<(Datagram, usize)>),
    Writable,
    Timer,
}

/// Resolves when any socket can take a datagram again.
async fn writable_any(sockets: &[Socket]) {
    std::future::poll_fn(|cx| {
        for s in sockets {
            if s.udp.poll_send_ready(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

/// The next datagram on any of the sockets, and the socket's index.
async fn recv_any(
    sockets: &[Socket],
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> std::io::Result<(Datagram, usize)> {
    std::future::poll_fn(|cx| {
        for (i, s) in sockets.iter().enumerate() {
            if let Poll::Ready(r) = poll_recv(s, cx, buf, cmsg) {
                return Poll::Ready(r.map(|d| (d, i)));
            }
        }
        Poll::Pending
    })
    .await
}

fn poll_recv(
    s: &Socket,
    cx: &mut std::task::Context<'_>,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> Poll<std::io::Result<Datagram>> {
    loop {
        ready!(s.udp.poll_recv_ready(cx))?;
        match s.try_recv(buf, cmsg) {
            // The readiness was stale; `try_io` cleared it, so the next poll registers.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return Poll::Ready(r),
        }
    }
}

impl Room {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; 2048];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wake_at = self.next_wake().min(next_tick);
            let backlogged = !self.backlog.is_empty();
            let wake = tokio::select! {
                cmd = rx.recv() => Wake::Command(cmd),
                r = recv_any(&self.sockets, &mut buf, &mut cmsg) => Wake::Datagram(r),
                () = writable_any(&self.sockets), if backlogged => Wake::Writable,
                () = tokio::time::sleep_until(wake_at.into()) => Wake::Timer,
            };
            match wake {
                Wake::Command(Some(cmd)) => self.command(cmd),
                Wake::Command(None) => break,
                Wake::Datagram(Ok((d, i))) => {
                    self.handle(i, &d, &buf[..d.len]);
                    self.read_more(&mut buf, &mut cmsg);
                }
                Wake::Datagram(Err(e)) => {
                    // ICMP errors (a peer gone) surface here on Linux; nothing to do.
                    tracing::trace!(room = %self.key, error = %e, "recv");
                }
                Wake::Writable | Wake::Timer => {}
            }
            // Timers after every wake: under load a socket is always readable, and timeouts
            // (RTCP, TWCC feedback, NACK, ICE) must not wait for a quiet moment.
            let now = Instant::now();
            self.timeouts(now);
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick(now);
            }
            self.settle();
            if self.conns.is_empty() && !self.sfu.room_open(self.key, self.serial) {
                // Members admitted before the room closed may still be queued.
                while let Ok(cmd) = rx.try_recv() {
                    self.command(cmd);
                    self.settle();
                }
                if self.conns.is_empty() {
                    break;
                }
            }
        }
        for c in &mut self.conns {
            c.fail(LeaveReason::Shutdown);
        }
        self.settle();
    }

    /// Handles queued events, removes ended connections, sends what is queued.
    fn settle(&mut self) {
        loop {
            self.process_events();
            let Some(i) = self.conns.iter().position(|c| c.failed.is_some()) else {
                break;
            };
            self.remove(i);
        }
        self.flush();
    }

    fn next_wake(&self) -> Instant {
        let mut at = Instant::now() + Duration::from_secs(1);
        for c in &self.conns {
            at = at.min(c.next_timeout);
            if !c.connected {
                at = at.min(c.deadline);
            }
        }
        at
    }

    fn index(&self, serial: u64) -> Option<usize> {
        self.conns.iter().position(|c| c.member.serial == serial)
    }

    fn command(&mut self, cmd: Command) {
        let cfg = &self.sfu.cfg;
        match cmd {
            Command::Add(member) => {
                let now = Instant::now();
                let rtc = engine::rtc(cfg, &self.sfu.crypto, now);
                let locals: Vec<SocketAddr> = self.sockets.iter().map(|s| s.local).collect();
                let conn = Conn::new(cfg, member, rtc, &locals, now);
                self.sfu
                    .stats
                    .peer_connections
                    .fetch_add(1, Ordering::Relaxed);
                self.conns.push(conn);
                let i = self.conns.len() - 1;
                for t in &self.tracks {
                    self.conns[i].subscribe(cfg, t, now);
                }
                self.drain(i);
            }
            Command::Signal(serial, signal, reply) => {
                let Some(i) = self.index(serial) else {
                    let _ = reply.send(Err(VoiceError::NotInRoom));
                    return;
                };
                let conn = &mut self.conns[i];
                let mut ready = Vec::new();
                let r = match &signal {
                    Signal::Offer { sdp, tracks } => conn.on_offer(cfg, sdp, tracks),
                    Signal::Answer { sdp } => conn.on_answer(cfg, sdp).map(|r| ready = r),
                    Signal::Candidate(c) => conn.on_candidate(c),
                };
                let offered = matches!(signal, Signal::Offer { .. }) && r.is_ok();
                let _ = reply.send(r);
                if offered {
                    self.offer_applied(i);
                }
                // A video subscription starts at a keyframe, asked for once it can be
                // forwarded (negotiated and connected): asked earlier, the keyframe is lost
                // and the throttle holds the next request back (joins' first video took
                // ~455 ms instead of ~310).
                if self.conns[i].connected {
                    self.want_keyframes(&ready, Instant::now());
                }
                self.drain(i);
            }
            Command::Close(serial, reason) => {
                if let Some(i) = self.index(serial) {
                    self.conns[i].fail(reason);
                }
            }
        }
    }

    /// After a client offer: publications whose m-section no longer sends end (and the
    /// kind may be published again).
    fn offer_applied(&mut self, i: usize) {
        let serial = self.conns[i].member.serial;
        let sending: Vec<String> = self.conns[i]
            .offer
            .sending
            .iter()
            .map(|s| s.mid.clone())
            .collect();
        let ended: Vec<u64> = self
            .tracks
            .iter()
            .filter(|t| t.publisher.serial == serial && !sending.iter().any(|m| **m == *t.mid))
            .map(|t| t.id)
            .collect();
        for id in ended {
            self.unpublish(id);
        }
    }

    fn read_more(&mut self, buf: &mut [u8], cmsg: &mut Vec<u8>) {
        for _ in 0..READ_BATCH {
            let mut got = false;
            for i in 0..self.sockets.len() {
                if let Ok(d) = self.sockets[i].try_recv(buf, cmsg) {
                    got = true;
                    self.handle(i, &d, &buf[..d.len]);
                }
            }
            if !got {
                break;
            }
        }
    }

    /// One datagram, through to its forwarded copies being sent: each datagram's copies go
    /// out before the next datagram is read, so a batch read in one wake does not hold the
    /// first datagram's copies behind the rest's forwarding.
    fn handle(&mut self, socket: usize, d: &Datagram, data: &[u8]) {
        self.receive(socket, d.source, data);
        self.settle();
        if std::mem::take(&mut self.forwarded)
            && let Some(delay) = d
                .arrived
                .and_then(|a| SystemTime::now().duration_since(a).ok())
        {
            self.sfu.stats.forward_delay.record(delay);
        }
    }

    fn receive(&mut self, socket: usize, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.sockets[socket].local,
                contents,
            },
        );
        let i = match self.by_source.get(&source).and_then(|s| self.index(*s)) {
            Some(i) => i,
            None => {
                let Some(i) = self
                    .conns
                    .iter()
                    .position(|c| c.failed.is_none() && c.rtc.accepts(&input))
                else {
                    return;
                };
                let c = &mut self.conns[i];
                c.sources.push(source);
                self.by_source.insert(source, c.member.serial);
                i
            }
        };
        if let Err(e) = self.conns[i].rtc.handle_input(input) {
            tracing::debug!(participant = %self.conns[i].member.id, error = %e, "input refused");
            self.conns[i].fail(LeaveReason::ConnectionFailed);
            return;
        }
        self.drain(i);
    }

    fn timeouts(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            if !c.connected && now >= c.deadline {
                c.fail(LeaveReason::IceTimeout);
                continue;
            }
            if c.next_timeout <= now {
                if let Err(e) = c.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(participant = %c.member.id, error = %e, "timeout refused");
                    c.fail(LeaveReason::ConnectionFailed);
                    continue;
                }
                self.drain(i);
            }
        }
    }

    /// Takes a connection's output: datagrams to the send queue, events to the event queue.
    fn drain(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let serial = c.member.serial;
        loop {
            match c.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    c.next_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => self.sends.push(t),
                Ok(Output::Event(e)) => self.events.push_back((serial, e)),
                Err(e) => {
                    tracing::debug!(participant = %c.member.id, error = %e, "connection failed");
                    c.fail(LeaveReason::ConnectionFailed);
                    break;
                }
            }
        }
    }

    fn process_events(&mut self) {
        while let Some((serial, e)) = self.events.pop_front() {
            let Some(i) = self.index(serial) else {
                continue;
            };
            self.event(i, e);
        }
    }

    fn event(&mut self, i: usize, e: Event) {
        let now = Instant::now();
        match e {
            Event::RtpPacket(p) => self.forward(i, p, now),
            Event::Connected => {
                self.conns[i].connected = true;
                // What it subscribes to (negotiated) starts at a keyframe now that it can
                // receive.
                let ids: Vec<u64> = self.conns[i]
                    .subs
                    .iter()
                    .filter(|(_, s)| s.ready)
                    .map(|(id, _)| *id)
                    .collect();
                self.want_keyframes(&ids, now);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.conns[i].fail(LeaveReason::ConnectionFailed);
            }
            Event::Closed => self.conns[i].fail(LeaveReason::ConnectionFailed),
            Event::KeyframeRequest(r) => self.keyframe_requested(i, r.mid, now),
            Event::EgressBitrateEstimate(BweKind::Twcc(b)) => {
                self.conns[i].member.downlink.update(b.as_u64());
            }
            Event::EgressBitrateEstimate(BweKind::Remb(_, b)) => {
                self.conns[i].member.note_remb(b.as_u64());
            }
            _ => {}
        }
    }

    fn want_keyframes(&mut self, ids: &[u64], now: Instant) {
        for t in 0..self.tracks.len() {
            if ids.contains(&self.tracks[t].id) {
                self.tracks[t].want_all_keyframes();
                self.send_keyframe_requests(t, now);
            }
        }
    }

    /// A subscriber asked for a keyframe (PLI/FIR): pass it on for the layer it gets.
    fn keyframe_requested(&mut self, i: usize, mid: Mid, now: Instant) {
        let Some(&id) = self.conns[i].by_mid.get(&mid) else {
            return;
        };
        let layer = self.conns[i].subs.get(&id).and_then(|s| s.renumber.current);
        let Some(t) = self.tracks.iter().position(|t| t.id == id) else {
            return;
        };
        self.tracks[t].want_keyframe(layer);
        self.send_keyframe_requests(t, now);
    }

    /// Sends the keyframe requests of a track that are due (throttled per layer).
    fn send_keyframe_requests(&mut self, t: usize, now: Instant) {
        let due = self.tracks[t].due_keyframe_requests(now, self.sfu.cfg.limits.pli_interval);
        if due.is_empty() {
            return;
        }
        let Some(p) = self.index(self.tracks[t].publisher.serial) else {
            return;
        };
        let mut api = self.conns[p].rtc.direct_api();
        for ssrc in due {
            if let Some(rx) = api.stream_rx(&ssrc) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                self.sfu
                    .stats
                    .keyframe_requests
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        // str0m writes a requested PLI at its next timeout, which can be the next regular
        // RTCP report: a joiner's first video waited ~140 ms for it. Time out now instead.
        if let Err(e) = self.conns[p].rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(participant = %self.conns[p].member.id, error = %e, "timeout refused");
            self.conns[p].fail(LeaveReason::ConnectionFailed);
        }
        self.drain(p);
    }

    /// A publisher's packet, to every subscriber that gets it.
    fn forward(&mut self, from: usize, p: RtpPacket, now: Instant) {
        let publisher = self.conns[from].member.clone();
        let ssrc = p.header.ssrc;
        let Some((mid, rid)) = self.conns[from]
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))
        else {
            return;
        };
        let t = match self
            .tracks
            .iter()
            .position(|t| t.publisher.serial == publisher.serial && t.mid == mid)
        {
            Some(t) => t,
            None => match self.publish(from, mid, p.header.payload_type, now) {
                Some(t) => t,
                None => return,
            },
        };
        let stats = &self.sfu.stats;
        let cfg = &self.sfu.cfg;
        let track = &mut self.tracks[t];
        if p.header.payload_type != track.pt {
            return; // a repair flow or another codec: not this track's media
        }
        stats.packets_received.fetch_add(1, Ordering::Relaxed);
        let Some(layer) = track.layer_of(rid.as_deref(), ssrc) else {
            return;
        };
        track.account(layer, p.payload.len(), now);
        let audio = track.kind.is_audio();
        // str0m gives the level as -dBov (0 loudest, -127 silence).
        let audio_level = if audio {
            p.header
                .ext_vals
                .audio_level
                .map(|l| (-i16::from(l)).clamp(0, 127) as u8)
        } else {
            None
        };
        if !publisher.may_forward(track.kind) {
            stats.packets_gated.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(level) = audio_level {
            publisher.meter.observe(level, cfg.speaking.threshold, now);
        }
        let keyframe = !audio && codec::is_keyframe_start(track.video_codec, &p.payload);
        if keyframe {
            track.keyframe_arrived(layer);
        }
        let (avail, rates) = track.availability(now, cfg.layer_bitrates);
        let inc = Incoming {
            layer,
            keyframe,
            seq: *p.seq_no,
            ts: p.header.timestamp,
            now,
            avail,
            rates,
        };
        let mut ext = ExtensionValues::default();
        if let Some(level) = audio_level {
            ext.audio_level = Some(-(level as i8));
            ext.voice_activity = p.header.ext_vals.voice_activity;
        }
        let mut wants = Vec::new();
        let mut written = Vec::new();
        for (j, c) in self.conns.iter_mut().enumerate() {
            if j == from || !c.connected || c.failed.is_some() {
                continue;
            }
            if audio && c.member.is_deaf() {
                continue;
            }
            let Some(sub) = c.subs.get_mut(&track.id) else {
                continue;
            };
            let (true, Some(pt), Some(mid)) = (sub.ready, sub.pt, sub.mid) else {
                continue;
            };
            let d = sub.renumber.decide(track, &c.member, &inc);
            if let Some(l) = d.want_key {
                wants.push(l);
            }
            let Some((seq, ts)) = d.send else {
                continue;
            };
            let mut api = c.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            tx.write_rtp(
                RtpWrite::new(pt, SeqNo::from(seq), ts, p.timestamp, p.payload.clone())
                    .marker(p.header.marker)
                    .ext_vals(ext.clone())
                    .nackable(!audio),
            );
            stats.packets_forwarded.fetch_add(1, Ordering::Relaxed);
            stats
                .bytes_forwarded
                .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
            written.push(j);
        }
        for l in wants {
            track.want_keyframe(Some(l));
        }
        self.send_keyframe_requests(t, now);
        self.forwarded |= !written.is_empty();
        for j in written {
            self.drain(j);
        }
    }

    /// A publisher's first packet on an m-section its offer sends: the track joins the room
    /// and everyone else subscribes.
    fn publish(
        &mut self,
        from: usize,
        mid: Mid,
        pt: str0m::media::Pt,
        now: Instant,
    ) -> Option<usize> {
        let c = &self.conns[from];
        let sending = c.offer.sending.iter().find(|s| *s.mid == *mid)?;
        let serial = c.member.serial;
        if self
            .tracks
            .iter()
            .any(|t| t.publisher.serial == serial && t.kind == sending.kind)
        {
            tracing::warn!(participant = %c.member.id, kind = ?sending.kind, "second track of a kind ignored");
            return None;
        }
        let params = c.rtc.codec_config().find(|p| p.pt() == pt)?;
        let id = self.sfu.next_track_id();
        let track = Track::new(
            id,
            c.member.clone(),
            mid,
            sending.kind,
            pt,
            params.spec(),
            &sending.rids,
        );
        let cfg = &self.sfu.cfg;
        for (j, other) in self.conns.iter_mut().enumerate() {
            if j != from {
                other.subscribe(cfg, &track, now);
            }
        }
        self.tracks.push(track);
        for j in 0..self.conns.len() {
            if j != from {
                self.drain(j);
            }
        }
        Some(self.tracks.len() - 1)
    }

    fn unpublish(&mut self, id: u64) {
        let Some(t) = self.tracks.iter().position(|t| t.id == id) else {
            return;
        };
        let track = self.tracks.swap_remove(t);
        let cfg = &self.sfu.cfg;
        for c in &mut self.conns {
            c.unsubscribe(cfg, &track);
        }
        for j in 0..self.conns.len() {
            self.drain(j);
        }
    }

    /// Removes an ended connection: its tracks, its membership, and it is told why.
    fn remove(&mut self, i: usize) {
        let mut c = self.conns.swap_remove(i);
        let reason = c.failed.take().unwrap_or(LeaveReason::Left);
        let serial = c.member.serial;
        for s in &c.sources {
            self.by_source.remove(s);
        }
        let ids: Vec<u64> = self
            .tracks
            .iter()
            .filter(|t| t.publisher.serial == serial)
            .map(|t| t.id)
            .collect();
        for id in ids {
            self.unpublish(id);
        }
        c.rtc.disconnect();
        self.sfu.remove_member(&c.member);
        self.sfu
            .stats
            .peer_connections
            .fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(
            participant = %c.member.id,
            room = %c.member.room,
            session = %c.member.session.0,
            ?reason,
            "left"
        );
        c.member.events.send(SfuEvent::Left(reason));
    }

    /// Every 100 ms: speaking transitions and the active speaker, and keyframe requests
    /// that were held back by the throttle.
    fn tick(&mut self, now: Instant) {
        let meters: Vec<_> = self
            .tracks
            .iter()
            .filter(|t| t.kind == TrackKind::Audio)
            .map(|t| (t.publisher.id, &t.publisher.meter))
            .collect();
        let changes = self.speakers.tick(&meters, &self.sfu.cfg.speaking, now);
        for c in &self.conns {
            for &(participant, speaking) in &changes.speaking {
                c.member.events.send(SfuEvent::Speaking {
                    participant,
                    speaking,
                });
            }
            if let Some(participant) = changes.active {
                c.member
                    .events
                    .send(SfuEvent::ActiveSpeaker { participant });
            }
        }
        for t in 0..self.tracks.len() {
            self.send_keyframe_requests(t, now);
        }
    }

    /// Sends what is queued: the backlog first (order matters to SRTP replay windows and
    /// jitter buffers), then this round's datagrams; what the socket will not take now
    /// waits for it to be writable, up to [`BACKLOG`] datagrams, beyond which the oldest
    /// are dropped.
    fn flush(&mut self) {
        self.backlog.extend(self.sends.drain(..));
        while let Some(t) = self.backlog.front() {
            let Some(s) = self.sockets.iter().find(|s| s.local == t.source) else {
                self.backlog.pop_front();
                continue;
            };
            match s.udp.try_send_to(&t.contents, t.destination) {
                Ok(_) => {
                    self.backlog.pop_front();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // Unreachable destinations and the like: that datagram is lost.
                    tracing::trace!(room = %self.key, error = %e, "send");
                    self.backlog.pop_front();
                }
            }
        }
        while self.backlog.len() > BACKLOG {
            self.backlog.pop_front();
            self.sfu
                .stats
                .packets_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
