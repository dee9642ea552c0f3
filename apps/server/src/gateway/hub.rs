//! The hub: every gateway session on this node, what each was sent, and
//! the recording of it for resume on any node.
//!
//! A session outlives its connection: while detached (for
//! `gateway_resume_secs`) it keeps sequencing the events its user may see,
//! so `resume` can deliver every missed dispatch in order. Each frame is
//! kept locally ([`REPLAY_FRAMES`] at most, sharing the event bytes) and,
//! in a cluster, recorded in the shared [`SessionLog`] *before* it is sent
//! (a [`Recorder`] task batches the writes): a client can never hold a
//! frame another node could not reproduce after this one dies.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_state::{Append, Frame, SessionLog, SessionMeta};
use hearth_types::{ChannelId, CommunityId, SessionId, UserId};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::ring::Ring;
use super::socket::Dispatch;

/// Frames kept for resume per session.
pub const REPLAY_FRAMES: usize = 2048;
/// Frames sequenced but not yet taken by the connection before it counts
/// as too slow.
pub const OUTBOUND_QUEUE: u64 = 1024;

/// A connection's link to its session. There is no per-connection queue of
/// frames: the session's own frames (shared event bytes) are the queue, and
/// the connection is woken to take what follows what it has written. So a
/// slow reader costs a counter, not copies of every frame.
#[derive(Default)]
pub struct Link {
    wake: Notify,
    close: Mutex<Option<(u16, &'static str)>>,
}

impl Link {
    /// Tells the connection to close with this code (the first one wins).
    pub fn close(&self, code: u16, reason: &'static str) {
        self.close.lock().get_or_insert((code, reason));
        self.wake.notify_one();
    }

    /// Resolves when there are frames to take or a close to perform.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// What a frame was, for recording and for resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The log event at this position.
    Log(u64),
    /// Not in the log (presence, frames made up for this session).
    Inline,
    /// READY or RESUMED: never sent again.
    Marker,
}

pub struct Sent {
    pub seq: u64,
    pub kind: Kind,
    /// Emptied once sent for markers (READY is large and never re-sent).
    pub tail: Arc<str>,
}

impl Sent {
    /// How the shared record keeps this frame; a marker records `pos`, how
    /// far in the log the session had got.
    fn recorded_as(&self, pos: u64) -> Frame {
        match self.kind {
            Kind::Log(p) => Frame::Log(p),
            Kind::Inline => Frame::Inline(self.tail.to_string()),
            Kind::Marker => Frame::Marker(pos),
        }
    }
}

pub struct Session {
    pub id: String,
    pub user: UserId,
    pub auth_session: SessionId,
    pub inner: Mutex<Inner>,
    recorder: Option<Arc<Recorder>>,
}

#[derive(Default)]
pub struct Inner {
    pub seq: u64,
    pub replay: VecDeque<Sent>,
    /// The attached connection, if any.
    pub link: Option<Arc<Link>>,
    /// Frames up to here were taken by the attached connection.
    pub written: u64,
    /// The last frame sequenced when the connection attached (plus the
    /// RESUMED that follows): what it starts behind by is a resume's
    /// replay, not slowness, and does not count towards [`OUTBOUND_QUEUE`].
    pub replay_until: u64,
    pub detached_at: Option<Instant>,
    /// Frames that arrived while READY (or a resume) was being prepared:
    /// sequenced after it.
    pub pending: Option<Vec<(Kind, Arc<str>)>>,
    /// The communities it is routed for (what each lets the user see is
    /// the user's, shared: see `views.rs`).
    pub communities: HashSet<CommunityId>,
    pub private: HashSet<ChannelId>,
    /// Users whose presence it asked for (`subscribe_presence`).
    pub watching: HashSet<UserId>,
    pub closed: bool,
    /// The last log position routed for this session (delivered or not).
    pub pos: u64,
    /// The log position its window reflects: where it started, or its last
    /// log frame sequenced. Markers are recorded with this, not `pos`: a
    /// shard may still hold frames for positions routing has claimed
    /// (`shards.rs`), and a resume elsewhere must take those from the log.
    pub sequenced: u64,
    /// Frames up to here are recorded (always `seq` without a recorder).
    pub recorded: u64,
    /// Frames up to here went to the connection (or to nobody, if detached).
    pub sent: u64,
    /// The generation of the shared record this node writes.
    pub generation: u64,
    /// The first sequence in the shared record (for trimming it).
    pub record_first: u64,
    /// Recording failed, or the record was lost: frames are sent
    /// unrecorded, and a resume elsewhere answers `invalid_session` (the
    /// record ends before them) until the recorder opens the record again
    /// from the replay window ([`Recorder::reopen`]).
    pub unrecorded: bool,
    dirty: bool,
}

/// An empty tail, for sent markers.
fn empty() -> Arc<str> {
    static E: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    E.clone()
}

impl Session {
    pub fn new(
        id: String,
        user: UserId,
        auth_session: SessionId,
        recorder: Option<Arc<Recorder>>,
    ) -> Session {
        Session {
            id,
            user,
            auth_session,
            inner: Mutex::new(Inner {
                pending: Some(Vec::new()),
                ..Default::default()
            }),
            recorder,
        }
    }

    /// Sequences one dispatch (by its shared tail), keeps it for resume, and
    /// sends it (after recording it, in a cluster).
    pub fn push(self: &Arc<Self>, kind: Kind, tail: &Arc<str>) {
        let mut g = self.inner.lock();
        if let Some(p) = g.pending.as_mut() {
            p.push((kind, tail.clone()));
            return;
        }
        self.push_locked(&mut g, kind, tail);
    }

    fn push_locked(self: &Arc<Self>, g: &mut Inner, kind: Kind, tail: &Arc<str>) {
        g.seq += 1;
        let seq = g.seq;
        if let Kind::Log(p) = kind {
            g.sequenced = g.sequenced.max(p);
        }
        g.replay.push_back(Sent {
            seq,
            kind,
            tail: tail.clone(),
        });
        while g.replay.len() > REPLAY_FRAMES {
            g.replay.pop_front();
        }
        match &self.recorder {
            None => {
                g.recorded = seq;
                send_upto(g, seq);
            }
            Some(r) if !g.dirty => {
                g.dirty = true;
                r.mark(self.clone());
            }
            Some(_) => {}
        }
    }

    /// Ends the "preparing" phase: `first` (READY, or the frames a resume
    /// re-sends), then what queued meanwhile, then `last` (RESUMED).
    pub fn finish(self: &Arc<Self>, first: Vec<(Kind, Arc<str>)>, last: Option<Arc<str>>) {
        let mut g = self.inner.lock();
        let pending = g.pending.take().unwrap_or_default();
        for (k, t) in first.into_iter().chain(pending) {
            self.push_locked(&mut g, k, &t);
        }
        if let Some(t) = last {
            self.push_locked(&mut g, Kind::Marker, &t);
        }
    }

    /// Asks for the record's life to be extended (heartbeats of quiet sessions).
    pub fn touch(self: &Arc<Self>) {
        if let Some(r) = &self.recorder {
            let mut g = self.inner.lock();
            if !g.dirty {
                g.dirty = true;
                r.mark(self.clone());
            }
        }
    }

    pub fn close(&self, code: u16, reason: &'static str) {
        let mut g = self.inner.lock();
        g.closed = true;
        if let Some(l) = g.link.take() {
            l.close(code, reason);
        }
    }

    /// Attaches a connection that has every frame up to `written`; any
    /// previous connection is told to close.
    pub fn attach(&self, link: Arc<Link>, written: u64) {
        let mut g = self.inner.lock();
        if let Some(old) = g.link.replace(link.clone()) {
            old.close(4000, "resumed elsewhere");
        }
        g.written = written;
        g.replay_until = g.seq + 1;
        g.detached_at = None;
        if g.sent > written {
            link.wake.notify_one();
        }
    }

    /// Detaches `link` if it is still the attached connection.
    pub fn detach(&self, link: &Arc<Link>, finished: bool) {
        let mut g = self.inner.lock();
        if g.link.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
            g.link = None;
            g.detached_at = Some(Instant::now());
        }
        if finished {
            g.closed = true;
        }
    }

    /// The frames `link` should write next, or the close it must perform.
    pub fn take(&self, link: &Arc<Link>) -> Result<Vec<Dispatch>, (u16, &'static str)> {
        if let Some(c) = *link.close.lock() {
            return Err(c);
        }
        let mut g = self.inner.lock();
        if !g.link.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
            return Err((4000, "resumed elsewhere"));
        }
        let (from, upto) = (g.written, g.sent);
        let start = first_after(&g.replay, from);
        let mut frames = Vec::new();
        for f in g.replay.range_mut(start..) {
            if f.seq > upto {
                break;
            }
            let tail = if f.kind == Kind::Marker {
                if f.tail.is_empty() {
                    continue; // an old READY or RESUMED: never sent again
                }
                std::mem::replace(&mut f.tail, empty())
            } else {
                f.tail.clone()
            };
            frames.push(Dispatch { seq: f.seq, tail });
        }
        g.written = upto;
        Ok(frames)
    }

    /// The client has every frame up to `seq` (its heartbeat says so), and
    /// any resume it makes will start after it: those frames need not be
    /// kept any more. An idle session thus keeps nothing (what it was sent
    /// while signing in, such as every member's presence, used to stay for
    /// its whole life), and a window left mostly empty gives its memory back.
    pub fn acked(&self, seq: u64) {
        let mut g = self.inner.lock();
        let upto = seq.min(g.written);
        while g.replay.front().is_some_and(|f| f.seq <= upto) {
            g.replay.pop_front();
        }
        if g.replay.len() * 4 < g.replay.capacity() {
            g.replay.shrink_to_fit();
        }
    }

    pub fn in_community(&self, c: CommunityId) -> bool {
        self.inner.lock().communities.contains(&c)
    }
}

/// The index in `replay` of the first frame after `seq`. The window holds
/// consecutive sequence numbers (frames are pushed one number apart and
/// only dropped from the front), so that frame's index is computed and
/// checked; a search is the fallback. The search was 13 % of the server's
/// time fanning out to 2,000 sessions: each step is a cache miss into
/// another session's window, ~11 per write.
fn first_after(replay: &VecDeque<Sent>, seq: u64) -> usize {
    let Some(front) = replay.front() else {
        return 0;
    };
    let next = seq.saturating_add(1);
    let i = usize::try_from(next.saturating_sub(front.seq)).unwrap_or(usize::MAX);
    match replay.get(i) {
        Some(f) if f.seq == next || (i == 0 && f.seq > seq) => i,
        None if replay.back().is_some_and(|b| b.seq <= seq) => replay.len(),
        _ => replay.partition_point(|f| f.seq <= seq),
    }
}

/// Releases frames `(sent, upto]` to the connection. One that has let more
/// than [`OUTBOUND_QUEUE`] frames pile up since it attached is detached
/// (told to close; the session stays resumable). A resume's replay does not
/// count: a connection resuming 1,500 frames behind would otherwise be
/// closed as too slow before it read one, every time it tried.
fn send_upto(g: &mut Inner, upto: u64) {
    if upto <= g.sent {
        return;
    }
    g.sent = upto;
    if let Some(l) = &g.link {
        if upto.saturating_sub(g.written.max(g.replay_until)) > OUTBOUND_QUEUE {
            if let Some(l) = g.link.take() {
                l.close(4000, "too slow to read; resume to continue");
            }
            g.detached_at = Some(Instant::now());
        } else {
            l.wake.notify_one();
        }
    }
}

/// Records frames in the shared session log, then sends them: one task,
/// batching whatever sessions became dirty while the last write was in
/// flight, so the cost is one round trip per batch, not per frame.
pub struct Recorder {
    pub log: Arc<dyn SessionLog>,
    pub ttl: Duration,
    dirty: Mutex<Vec<Arc<Session>>>,
    wake: Notify,
    stopped: std::sync::atomic::AtomicBool,
    /// No attempt to open unrecorded sessions' records again before this
    /// (the shared state failed: do not ask it once per batch).
    reopen_after: Mutex<Instant>,
}

/// Between attempts to open lost records again while the shared state fails.
const REOPEN_BACKOFF: Duration = Duration::from_secs(1);

impl Recorder {
    pub fn start(log: Arc<dyn SessionLog>, ttl: Duration) -> Arc<Recorder> {
        let r = Arc::new(Recorder {
            log,
            ttl,
            dirty: Mutex::new(Vec::new()),
            wake: Notify::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            reopen_after: Mutex::new(Instant::now()),
        });
        tokio::spawn(r.clone().run());
        r
    }

    fn mark(&self, s: Arc<Session>) {
        self.dirty.lock().push(s);
        self.wake.notify_one();
    }

    /// Ends the recording task (after the batch in flight).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            loop {
                let batch = std::mem::take(&mut *self.dirty.lock());
                if batch.is_empty() {
                    break;
                }
                self.flush(batch).await;
            }
        }
    }

    async fn flush(&self, batch: Vec<Arc<Session>>) {
        let mut appends = Vec::with_capacity(batch.len());
        let mut upto = Vec::with_capacity(batch.len());
        let mut reopen = Vec::new();
        for s in &batch {
            let mut g = s.inner.lock();
            g.dirty = false;
            let target = g.seq;
            let oldest = g.replay.front().map_or(target + 1, |f| f.seq);
            if g.unrecorded || g.generation == 0 || oldest > g.recorded + 1 {
                // Nothing recordable (no record, or frames lost to the
                // window before recording): send without recording, and
                // try to record it again from the window.
                g.unrecorded = true;
                upto.push((s.clone(), target, false));
                if !g.closed {
                    reopen.push(s.clone());
                }
                continue;
            }
            let replace = target + 1 - g.record_first > 2 * REPLAY_FRAMES as u64;
            let from = if replace { oldest } else { g.recorded + 1 };
            let frames = g
                .replay
                .iter()
                .filter(|f| f.seq >= from && f.seq <= target)
                .map(|f| f.recorded_as(g.sequenced))
                .collect();
            if replace {
                g.record_first = from;
            }
            appends.push(Append {
                session: s.id.clone(),
                generation: g.generation,
                first_seq: from,
                frames,
                replace,
            });
            upto.push((s.clone(), target, true));
        }
        let (ok, lost) = match self.log.append(&appends, self.ttl).await {
            Ok(lost) => (true, lost),
            Err(e) => {
                tracing::error!(error = %e, sessions = appends.len(), "recording gateway frames failed; sending them unrecorded");
                (false, Vec::new())
            }
        };
        // Records the shared state no longer has (it restarted empty):
        // their frames were not kept.
        let lost: std::collections::HashSet<&str> =
            lost.iter().map(|&i| appends[i].session.as_str()).collect();
        if !lost.is_empty() {
            tracing::warn!(
                sessions = lost.len(),
                "gateway session records were lost (shared state restarted?); recording them again"
            );
        }
        for (s, target, recorded) in upto {
            let mut g = s.inner.lock();
            if recorded && ok && !lost.contains(s.id.as_str()) {
                g.recorded = g.recorded.max(target);
            } else {
                g.unrecorded = true;
                if recorded && ok && !g.closed {
                    reopen.push(s.clone());
                }
            }
            send_upto(&mut g, target);
        }
        if !ok {
            *self.reopen_after.lock() = Instant::now() + REOPEN_BACKOFF;
        }
        self.reopen(reopen).await;
    }

    /// Opens the records of sessions that have none (lost, or never
    /// written) again, from their replay window: afterwards they resume on
    /// any node again from anywhere in that window, instead of answering
    /// `invalid_session` until the client identifies anew. At most once per
    /// [`REOPEN_BACKOFF`] while the shared state fails.
    async fn reopen(&self, sessions: Vec<Arc<Session>>) {
        if sessions.is_empty() || Instant::now() < *self.reopen_after.lock() {
            return;
        }
        for s in sessions {
            let (first, target, frames) = {
                let g = s.inner.lock();
                let target = g.seq;
                let first = g.replay.front().map_or(target + 1, |f| f.seq);
                let frames: Vec<Frame> = g
                    .replay
                    .iter()
                    .map(|f| f.recorded_as(g.sequenced))
                    .collect();
                (first, target, frames)
            };
            let meta = SessionMeta {
                user: s.user.0,
                auth_session: s.auth_session.0,
            };
            match self.log.open(&s.id, &meta, first, &frames, self.ttl).await {
                Ok(generation) => {
                    let mut g = s.inner.lock();
                    g.generation = generation;
                    g.record_first = first;
                    g.recorded = target;
                    g.unrecorded = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "opening a lost gateway session record again");
                    *self.reopen_after.lock() = Instant::now() + REOPEN_BACKOFF;
                    return;
                }
            }
        }
    }
}

/// A remote session to take in: caught up from the window, then routed live.
pub struct Adopt {
    pub session: Arc<Session>,
    pub from_pos: u64,
    pub reply: oneshot::Sender<bool>,
}

type Group = HashMap<String, Arc<Session>>;

struct Sessions {
    map: HashMap<String, Arc<Session>>,
    /// The log position routing has reached: a session inserted now gets
    /// every event after it.
    routed: u64,
    /// Who may be interested in what, so routing an event visits only the
    /// sessions of its community, user or private channel (a superset:
    /// each delivery still checks the session's view and permissions).
    by_community: HashMap<CommunityId, Group>,
    by_user: HashMap<UserId, Group>,
    by_private: HashMap<ChannelId, Group>,
    /// Sessions subscribed to a user's presence.
    by_watch: HashMap<UserId, Group>,
}

fn group_add<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Group>, k: K, s: &Arc<Session>) {
    m.entry(k).or_default().insert(s.id.clone(), s.clone());
}

fn group_remove<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Group>, k: &K, id: &str) {
    if let Some(g) = m.get_mut(k) {
        g.remove(id);
        if g.is_empty() {
            m.remove(k);
        }
    }
}

type Keys = (Vec<CommunityId>, Vec<ChannelId>, Vec<UserId>);

fn keys_of(s: &Session) -> Keys {
    let g = s.inner.lock();
    (
        g.communities.iter().copied().collect(),
        g.private.iter().copied().collect(),
        g.watching.iter().copied().collect(),
    )
}

impl Sessions {
    fn index(&mut self, s: &Arc<Session>) {
        let (communities, private, watching) = keys_of(s);
        for c in communities {
            group_add(&mut self.by_community, c, s);
        }
        for ch in private {
            group_add(&mut self.by_private, ch, s);
        }
        for u in watching {
            group_add(&mut self.by_watch, u, s);
        }
        group_add(&mut self.by_user, s.user, s);
    }

    fn unindex(&mut self, s: &Arc<Session>) {
        let (communities, private, watching) = keys_of(s);
        for c in communities {
            group_remove(&mut self.by_community, &c, &s.id);
        }
        for ch in private {
            group_remove(&mut self.by_private, &ch, &s.id);
        }
        for u in watching {
            group_remove(&mut self.by_watch, &u, &s.id);
        }
        group_remove(&mut self.by_user, &s.user, &s.id);
    }
}

/// Where a log event may go.
pub enum Audience {
    Community(CommunityId),
    User(UserId),
    /// The sessions of each of these users (a new DM's participants).
    Users(Vec<UserId>),
    Private(ChannelId),
    /// Nobody (an event no session can be concerned with).
    Nobody,
}

pub struct Hub {
    sessions: Mutex<Sessions>,
    /// Connections per address and session slots per user.
    pub limits: super::limits::Limits,
    /// Who may see what: per community, per user (see `views.rs`).
    pub views: super::views::Views,
    /// The last status each user announced on this node (absent: offline).
    presence: Mutex<HashMap<UserId, &'static str>>,
    pub ring: Mutex<Ring>,
    pub recorder: Option<Arc<Recorder>>,
    adopt_tx: mpsc::Sender<Adopt>,
    adopt_rx: Mutex<Option<mpsc::Receiver<Adopt>>>,
    /// Set (or dropped, with the hub) when the gateway stops: every
    /// background task of the gateway watches it.
    stop: watch::Sender<bool>,
    /// Whether routing is following the bus log (false while it re-follows
    /// after losing it): `/readyz` reports it.
    pub following: std::sync::atomic::AtomicBool,
    /// The node is draining (a rolling restart): see [`Hub::drain`].
    draining: std::sync::atomic::AtomicBool,
    /// Users whose views are loaded for a session not registered yet (a
    /// resume taking over another node's session loads them before
    /// routing adopts it): the reaper keeps their views ([`Hub::retain_views`]).
    preparing: Mutex<HashMap<UserId, usize>>,
}

/// Keeps a user's views from the reaper while a session of theirs is being
/// prepared outside the hub; see [`Hub::preparing`].
pub struct Preparing<'a> {
    hub: &'a Hub,
    user: UserId,
}

impl Drop for Preparing<'_> {
    fn drop(&mut self) {
        let mut p = self.hub.preparing.lock();
        if let Some(n) = p.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                p.remove(&self.user);
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hub {
    /// Stops the gateway's background tasks (routing, recording, reaping,
    /// presence); they also stop by themselves once the server is dropped.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        if let Some(r) = &self.recorder {
            r.stop();
        }
    }

    /// Resolves once the gateway is stopping.
    /// Whether the gateway was stopped.
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    pub fn new(recorder: Option<Arc<Recorder>>, window_events: usize, window: Duration) -> Hub {
        let (adopt_tx, adopt_rx) = mpsc::channel(1024);
        Hub {
            sessions: Mutex::new(Sessions {
                map: HashMap::new(),
                routed: 0,
                by_community: HashMap::new(),
                by_user: HashMap::new(),
                by_private: HashMap::new(),
                by_watch: HashMap::new(),
            }),
            limits: Default::default(),
            views: Default::default(),
            presence: Mutex::new(HashMap::new()),
            ring: Mutex::new(Ring::new(window_events, window)),
            recorder,
            adopt_tx,
            adopt_rx: Mutex::new(Some(adopt_rx)),
            stop: watch::channel(false).0,
            following: std::sync::atomic::AtomicBool::new(true),
            draining: std::sync::atomic::AtomicBool::new(false),
            preparing: Mutex::new(HashMap::new()),
        }
    }

    /// Marks `user` as having a session in preparation until the guard
    /// drops: take it before loading the session's views.
    pub fn preparing(&self, user: UserId) -> Preparing<'_> {
        *self.preparing.lock().entry(user).or_default() += 1;
        Preparing { hub: self, user }
    }

    /// Drops the views nobody here needs: users with neither a registered
    /// session nor one in preparation. The preparing set stays locked
    /// throughout, so a view installed under a guard taken after the users
    /// were read cannot be dropped by this pass.
    pub fn retain_views(&self) {
        let preparing = self.preparing.lock();
        let mut users = self.users();
        users.extend(preparing.keys().copied());
        self.views.retain_used(&users);
    }

    pub fn new_session(&self, id: String, user: UserId, auth: SessionId) -> Arc<Session> {
        Arc::new(Session::new(id, user, auth, self.recorder.clone()))
    }

    /// Registers a session; returns the log position it starts after.
    pub fn insert(&self, s: Arc<Session>) -> u64 {
        let mut g = self.sessions.lock();
        let at = g.routed;
        {
            let mut i = s.inner.lock();
            i.pos = at;
            i.sequenced = i.sequenced.max(at);
        }
        g.index(&s);
        if let Some(old) = g.map.insert(s.id.clone(), s.clone()) {
            g.unindex(&old);
            g.index(&s);
        }
        at
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let mut g = self.sessions.lock();
        let s = g.map.remove(id)?;
        g.unindex(&s);
        Some(s)
    }

    /// Re-reads a registered session's view into the index (after READY).
    pub fn reindex(&self, s: &Arc<Session>) {
        let mut g = self.sessions.lock();
        if g.map.contains_key(&s.id) {
            g.unindex(s);
            g.index(s);
        }
    }

    /// The session joined (or can now see) community `c`.
    pub fn join(&self, s: &Arc<Session>, c: CommunityId) {
        let mut g = self.sessions.lock();
        if g.map.contains_key(&s.id) {
            group_add(&mut g.by_community, c, s);
        }
    }

    /// The session left community `c` (call after updating its view).
    pub fn leave(&self, s: &Arc<Session>, c: CommunityId) {
        group_remove(&mut self.sessions.lock().by_community, &c, &s.id);
    }

    pub fn add_private(&self, s: &Arc<Session>, ch: ChannelId) {
        let mut g = self.sessions.lock();
        if g.map.contains_key(&s.id) {
            group_add(&mut g.by_private, ch, s);
        }
    }

    /// The sessions an event at `pos` may go to; marks `pos` routed.
    pub fn audience_at(&self, pos: u64, a: &Audience) -> Vec<Arc<Session>> {
        let mut g = self.sessions.lock();
        g.routed = g.routed.max(pos);
        let group = match a {
            Audience::Community(c) => g.by_community.get(c),
            Audience::User(u) => g.by_user.get(u),
            Audience::Private(ch) => g.by_private.get(ch),
            Audience::Users(users) => {
                return users
                    .iter()
                    .filter_map(|u| g.by_user.get(u))
                    .flat_map(|m| m.values().cloned())
                    .collect();
            }
            Audience::Nobody => None,
        };
        group
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The sessions of community `c` (now).
    pub fn in_community(&self, c: CommunityId) -> Vec<Arc<Session>> {
        self.audience_at(0, &Audience::Community(c))
    }

    pub fn of_user(&self, u: UserId) -> Vec<Arc<Session>> {
        self.audience_at(0, &Audience::User(u))
    }

    /// The sessions subscribed to `u`'s presence.
    pub fn watchers_of(&self, u: UserId) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .by_watch
            .get(&u)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The users with a session here (registered: READY in progress too).
    pub fn users(&self) -> HashSet<UserId> {
        self.sessions.lock().by_user.keys().copied().collect()
    }

    /// The users with a session routed for community `c`.
    pub fn users_in(&self, c: CommunityId) -> HashSet<UserId> {
        self.sessions
            .lock()
            .by_community
            .get(&c)
            .map(|m| m.values().map(|s| s.user).collect())
            .unwrap_or_default()
    }

    /// Replaces the users whose presence `s` follows.
    pub fn watch(&self, s: &Arc<Session>, users: HashSet<UserId>) {
        let mut g = self.sessions.lock();
        let registered = g.map.contains_key(&s.id);
        let old = std::mem::replace(&mut s.inner.lock().watching, users.clone());
        if !registered {
            return;
        }
        for u in old.difference(&users) {
            group_remove(&mut g.by_watch, u, &s.id);
        }
        for u in users.difference(&old) {
            group_add(&mut g.by_watch, *u, s);
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().map.get(id).cloned()
    }

    /// Starts draining the node (a rolling restart): `/readyz` says 503,
    /// no new session starts here, and every attached connection is told
    /// to reconnect (op `reconnect`, then close 1012). The sessions stay
    /// resumable: routing and recording go on until each client has
    /// resumed on another node from the shared record (which fences this
    /// node out), or the node exits. Returns how many connections were told.
    pub fn drain(&self) -> usize {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
        let mut told = 0;
        for s in self.all() {
            let link = s.inner.lock().link.clone();
            if let Some(l) = link {
                l.close(
                    super::protocol::close::RECONNECT,
                    "this node is restarting: resume on another",
                );
                told += 1;
            }
        }
        told
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// After [`Hub::drain`]: no connection is attached here any more and
    /// every frame sequenced is in the shared record.
    pub fn drained(&self) -> bool {
        self.all().iter().all(|s| {
            let g = s.inner.lock();
            g.link.is_none() && (g.unrecorded || g.recorded >= g.seq)
        })
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().map.values().cloned().collect()
    }

    /// Marks the log routed up to `pos` (sessions inserted from now on
    /// start after it).
    /// The last log position routed here.
    pub fn routed(&self) -> u64 {
        self.sessions.lock().routed
    }

    pub fn mark_routed(&self, pos: u64) {
        let mut g = self.sessions.lock();
        g.routed = g.routed.max(pos);
    }

    /// Waits (briefly) until routing has reached `pos`: a session recorded
    /// by a node slightly ahead of this one names positions not seen here yet.
    pub async fn wait_routed(&self, pos: u64, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if self.sessions.lock().routed >= pos {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn take_adopt_rx(&self) -> Option<mpsc::Receiver<Adopt>> {
        self.adopt_rx.lock().take()
    }

    /// Hands a resumed session to the routing task; `false`: it could not
    /// be caught up (outside the window, or its view changed meanwhile).
    pub async fn adopt(&self, session: Arc<Session>, from_pos: u64) -> bool {
        let (reply, rx) = oneshot::channel();
        if self
            .adopt_tx
            .send(Adopt {
                session,
                from_pos,
                reply,
            })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Records a status; returns whether it changed (only changes are announced).
    pub fn set_presence(&self, user: UserId, status: &'static str) -> bool {
        let mut p = self.presence.lock();
        if status == "offline" {
            p.remove(&user).is_some()
        } else {
            p.insert(user, status) != Some(status)
        }
    }

    /// Every user with a status on this node: what its shared presence entries
    /// should say.
    pub fn local_presence(&self) -> Vec<(UserId, &'static str)> {
        self.presence.lock().iter().map(|(u, s)| (*u, *s)).collect()
    }

    pub fn presence_of(&self, user: UserId) -> Option<&'static str> {
        self.presence.lock().get(&user).copied()
    }

    /// Whether the user has a connected session on this node.
    pub fn has_live_session(&self, user: UserId) -> bool {
        self.of_user(user)
            .iter()
            .any(|s| s.inner.lock().link.is_some())
    }

    /// (user, session id) of every session with a connection attached.
    pub fn attached(&self) -> Vec<(UserId, String)> {
        self.sessions
            .lock()
            .map
            .values()
            .filter(|s| s.inner.lock().link.is_some())
            .map(|s| (s.user, s.id.clone()))
            .collect()
    }

    /// Keeps at most `keep` of the user's detached (resumable) sessions on
    /// this node, ending the ones detached longest ago.
    pub fn trim_detached(&self, user: UserId, keep: usize) {
        let mut detached: Vec<(Instant, Arc<Session>)> = self
            .of_user(user)
            .into_iter()
            .filter_map(|s| {
                let at = {
                    let g = s.inner.lock();
                    if g.closed || g.link.is_some() {
                        return None;
                    }
                    g.detached_at?
                };
                Some((at, s))
            })
            .collect();
        if detached.len() <= keep {
            return;
        }
        detached.sort_by_key(|(at, _)| *at);
        let excess = detached.len() - keep;
        for (_, s) in detached.into_iter().take(excess) {
            s.inner.lock().closed = true;
        }
    }

    pub fn count(&self) -> usize {
        self.sessions.lock().map.len()
    }

    /// Drops sessions detached for longer than the resume window.
    pub fn reap(&self, window: Duration) -> Vec<Arc<Session>> {
        let mut gone = Vec::new();
        let mut g = self.sessions.lock();
        g.map.retain(|_, s| {
            let i = s.inner.lock();
            let expired = i.closed || i.detached_at.is_some_and(|t| t.elapsed() > window);
            if expired {
                gone.push(s.clone());
            }
            !expired
        });
        for s in &gone {
            g.unindex(s);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(seqs: impl IntoIterator<Item = u64>) -> VecDeque<Sent> {
        seqs.into_iter()
            .map(|seq| Sent {
                seq,
                kind: Kind::Inline,
                tail: empty(),
            })
            .collect()
    }

    #[test]
    fn first_after_agrees_with_a_search() {
        let windows = [
            window([]),
            window(5..6),
            window(10..2058),
            // Wrapped: popped from the front, pushed at the back.
            {
                let mut w = window(1..100);
                for s in 100..150 {
                    w.pop_front();
                    w.push_back(Sent {
                        seq: s,
                        kind: Kind::Log(s),
                        tail: empty(),
                    });
                }
                w
            },
            // Not consecutive: the search decides.
            window([3, 4, 9, 10, 11, 40]),
        ];
        for w in &windows {
            for seq in [
                0,
                1,
                2,
                3,
                4,
                5,
                8,
                9,
                10,
                11,
                39,
                40,
                41,
                60,
                99,
                149,
                150,
                2057,
                2058,
                5000,
                u64::MAX,
            ] {
                assert_eq!(
                    first_after(w, seq),
                    w.partition_point(|f| f.seq <= seq),
                    "seq {seq} in a window of {}",
                    w.len()
                );
            }
        }
    }
}
