//! Cross-node order of MESSAGE_CREATE per channel (see `hearth_chat::ChannelGate`).
//!
//! A node mints IDs for a channel only while it holds the channel's lease
//! (`hearth_state::Leases`, in Redis). It lets go once nothing it minted is
//! in flight *and* every MESSAGE_CREATE it emitted is stored in the bus log,
//! leaving its highest ID as the floor for the next holder. So whoever mints
//! next mints higher and appends later: the log's order is the ID order.
//!
//! A node keeps a channel it sends on while it is busy and for [`LINGER`]
//! after its last message is stored, so a steady stream through one node
//! costs no lease round trips per message; a channel another node asked for
//! within [`CONTENDED_FOR`] is let go as soon as it is idle instead, so sends
//! spread over nodes (a load balancer's round robin) do not wait for asks. A node that wants the channel
//! asks for it over the bus (`gate.<channel>`, answered within a
//! millisecond or so) and in the shared state (checked every
//! [`REQUEST_CHECK`], for an ask the bus lost); the holder then stops taking
//! new sends and lets go as soon as what it minted is stored.
//! A node that dies holding a lease holds it at most [`TTL`]; by then the
//! clock has moved past every ID it minted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hearth_bus::Bus;
use hearth_chat::{ChannelGate, ChatError};
use hearth_state::Leases;
use hearth_types::{ChannelId, MessageId};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Lease life without renewal.
pub const TTL: Duration = Duration::from_secs(2);
/// How often held leases are looked at (renewal, lingering).
pub const ASK_CHECK: Duration = Duration::from_millis(20);
/// How often the shared state is asked whether another node wants a held
/// channel (asks normally come over the bus at once).
const REQUEST_CHECK: Duration = Duration::from_millis(100);
/// How long an idle node keeps a channel nobody asked for.
pub const LINGER: Duration = Duration::from_millis(100);
/// How long after an ask a channel counts as sent on by other nodes too.
const CONTENDED_FOR: Duration = Duration::from_secs(1);
/// Between two asks over the bus for the same channel by one waiting send.
const ASK_AGAIN: Duration = Duration::from_millis(10);
/// The bus subjects of asks: `gate.<channel>`.
pub const ASK_PREFIX: &str = "gate.";
/// How long a send waits for a channel before answering 503.
const ENTER_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Acquiring,
    Held,
    /// Asked to hand over: no new sends until released.
    Draining,
    Releasing,
}

struct LineState {
    phase: Phase,
    inflight: i64,
    unacked: i64,
    floor: i64,
    max_id: i64,
    renewed: Instant,
    /// When it last had nothing in flight or unstored (while held).
    idle_since: Instant,
    /// When another node last asked for it: a channel others send on too
    /// is let go at once when idle, not after [`LINGER`].
    asked_at: Option<Instant>,
}

struct Line {
    st: Mutex<LineState>,
    changed: Notify,
}

pub struct ClusterGate {
    leases: Arc<dyn Leases>,
    holder: String,
    /// Where asks for a channel go (and come from).
    bus: Arc<dyn Bus>,
    lines: Mutex<HashMap<ChannelId, Arc<Line>>>,
}

fn key(c: ChannelId) -> String {
    format!("chan:{c}")
}

impl ClusterGate {
    pub fn start(leases: Arc<dyn Leases>, holder: String, bus: Arc<dyn Bus>) -> Arc<ClusterGate> {
        let g = Arc::new(ClusterGate {
            leases,
            holder,
            bus,
            lines: Mutex::new(HashMap::new()),
        });
        tokio::spawn(Self::tend(Arc::downgrade(&g)));
        tokio::spawn(Self::hear_asks(Arc::downgrade(&g)));
        g
    }

    /// Hands over a held channel another node asked for over the bus.
    async fn hear_asks(me: std::sync::Weak<ClusterGate>) {
        let sub = match me.upgrade() {
            Some(g) => g.bus.subscribe(ASK_PREFIX).await,
            None => return,
        };
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                // Asks still reach holders through the shared state.
                tracing::error!(error = %e, "channel gate cannot hear asks over the bus");
                return;
            }
        };
        while let Some(d) = sub.next().await {
            let hearth_bus::Delivery::Event(ev) = d else {
                continue;
            };
            let Some(me) = me.upgrade() else { return };
            let channel = ev.subject[ASK_PREFIX.len()..].parse::<i64>().ok();
            if let Some(c) = channel.map(ChannelId)
                && ev.source != me.holder
            {
                me.asked(c);
            }
        }
    }

    /// Another node wants `c`: stop taking sends and let go once idle.
    fn asked(self: &Arc<Self>, c: ChannelId) {
        let Some(line) = self.lines.lock().get(&c).cloned() else {
            return;
        };
        let mut st = line.st.lock();
        st.asked_at = Some(Instant::now());
        if st.phase == Phase::Held {
            st.phase = Phase::Draining;
            self.maybe_release(c, &line, &mut st);
        }
    }

    /// Asks whoever holds `c` to hand it over, over the bus (at once) and
    /// in the shared state (in case the bus loses it).
    async fn ask(&self, c: ChannelId) {
        let ev = hearth_bus::Envelope::json(
            c.0.to_string(),
            self.holder.clone(),
            "hearth.GATE_ASK",
            format!("{ASK_PREFIX}{}", c.0),
            Vec::new(),
        );
        if let Err(e) = self.bus.publish(ev).await {
            tracing::debug!(error = %e, "asking for a channel over the bus");
        }
        let _ = self.leases.request(&key(c), TTL / 10).await;
    }

    fn line(&self, c: ChannelId) -> Arc<Line> {
        self.lines
            .lock()
            .entry(c)
            .or_insert_with(|| {
                Arc::new(Line {
                    st: Mutex::new(LineState {
                        phase: Phase::Idle,
                        inflight: 0,
                        unacked: 0,
                        floor: 0,
                        max_id: 0,
                        renewed: Instant::now(),
                        idle_since: Instant::now(),
                        asked_at: None,
                    }),
                    changed: Notify::new(),
                })
            })
            .clone()
    }

    /// A MESSAGE_CREATE this node emitted through the gate is stored (or
    /// failed to be: either way it no longer holds the channel).
    pub fn acked(self: &Arc<Self>, c: ChannelId) {
        let line = self.line(c);
        let mut st = line.st.lock();
        st.unacked -= 1;
        self.maybe_release(c, &line, &mut st);
    }

    fn maybe_release(self: &Arc<Self>, c: ChannelId, line: &Arc<Line>, st: &mut LineState) {
        if !matches!(st.phase, Phase::Held | Phase::Draining) || st.inflight > 0 || st.unacked > 0 {
            return;
        }
        let contended = st.asked_at.is_some_and(|at| at.elapsed() < CONTENDED_FOR);
        if st.phase == Phase::Held && !contended {
            // Nobody asked lately: keep it a while for the next send (tend
            // lets go).
            st.idle_since = Instant::now();
            return;
        }
        st.phase = Phase::Releasing;
        let floor = st.max_id.max(st.floor);
        let (me, line) = (self.clone(), line.clone());
        tokio::spawn(async move {
            if let Err(e) = me.leases.release(&key(c), &me.holder, floor).await {
                tracing::warn!(error = %e, channel = c.0, "releasing a channel lease");
            }
            line.st.lock().phase = Phase::Idle;
            line.changed.notify_waiters();
        });
    }

    /// Renews held leases, lets go of those idle for [`LINGER`] and hands
    /// over those another node asked for in the shared state.
    async fn tend(me: std::sync::Weak<ClusterGate>) {
        let mut tick = tokio::time::interval(ASK_CHECK);
        let mut last_request_check = Instant::now();
        loop {
            tick.tick().await;
            let Some(me) = me.upgrade() else { return };
            let held: Vec<(ChannelId, Arc<Line>)> = me
                .lines
                .lock()
                .iter()
                .filter(|(_, l)| l.st.lock().phase == Phase::Held)
                .map(|(c, l)| (*c, l.clone()))
                .collect();
            let check_requests = last_request_check.elapsed() >= REQUEST_CHECK;
            if check_requests {
                last_request_check = Instant::now();
            }
            for (c, line) in held {
                let lingered = {
                    let st = line.st.lock();
                    st.inflight == 0 && st.unacked == 0 && st.idle_since.elapsed() >= LINGER
                };
                let requested = !lingered
                    && check_requests
                    && me.leases.requested(&key(c)).await.unwrap_or(false);
                if lingered || requested {
                    let mut st = line.st.lock();
                    if requested {
                        st.asked_at = Some(Instant::now());
                    }
                    if st.phase == Phase::Held {
                        st.phase = Phase::Draining;
                        me.maybe_release(c, &line, &mut st);
                    }
                    continue;
                }
                let due = line.st.lock().renewed.elapsed() > TTL / 4;
                if due {
                    match me.leases.acquire(&key(c), &me.holder, TTL).await {
                        Ok(Some(_)) => line.st.lock().renewed = Instant::now(),
                        Ok(None) => tracing::error!(
                            channel = c.0,
                            "lost a channel lease while holding it (stalled?)"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, channel = c.0, "renewing a channel lease")
                        }
                    }
                }
            }
            // Forget idle lines now and then.
            let mut lines = me.lines.lock();
            if lines.len() > 10_000 {
                lines.retain(|_, l| Arc::strong_count(l) > 1 || l.st.lock().phase != Phase::Idle);
            }
        }
    }
}

/// The gate as the chat domain holds it.
pub struct Gate(pub Arc<ClusterGate>);

#[async_trait]
impl ChannelGate for Gate {
    async fn enter(&self, c: ChannelId) -> Result<i64, ChatError> {
        self.0.enter(c).await
    }

    fn finished(&self, c: ChannelId, emitted: Option<MessageId>) {
        self.0.finished(c, emitted);
    }
}

impl ClusterGate {
    async fn enter(&self, c: ChannelId) -> Result<i64, ChatError> {
        let line = self.line(c);
        let deadline = tokio::time::Instant::now() + ENTER_WAIT;
        loop {
            let wait = line.changed.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            let acquire = {
                let mut st = line.st.lock();
                match st.phase {
                    Phase::Held => {
                        st.inflight += 1;
                        return Ok(st.floor.max(st.max_id));
                    }
                    Phase::Idle => {
                        st.phase = Phase::Acquiring;
                        true
                    }
                    _ => false,
                }
            };
            if acquire {
                let mut asked: Option<tokio::time::Instant> = None;
                // 1 ms, then longer: a handover takes a millisecond or two
                // when the holder is idle, longer when it is busy, and every
                // try is a Redis round trip.
                let mut pause = Duration::from_millis(1);
                let got = loop {
                    match self.leases.acquire(&key(c), &self.holder, TTL).await {
                        Ok(Some(floor)) => break Ok(floor),
                        Ok(None) if tokio::time::Instant::now() < deadline => {
                            if asked.is_none_or(|at| at.elapsed() >= ASK_AGAIN) {
                                asked = Some(tokio::time::Instant::now());
                                self.ask(c).await;
                            }
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(8));
                        }
                        Ok(None) => {
                            break Err(ChatError::Unavailable("the channel's ordering lease"));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "acquiring a channel lease");
                            break Err(ChatError::Unavailable("cross-node ordering (Redis)"));
                        }
                    }
                };
                let mut st = line.st.lock();
                match got {
                    Ok(floor) => {
                        st.phase = Phase::Held;
                        st.floor = floor;
                        st.renewed = Instant::now();
                        st.inflight += 1;
                        let f = st.floor.max(st.max_id);
                        drop(st);
                        line.changed.notify_waiters();
                        return Ok(f);
                    }
                    Err(e) => {
                        st.phase = Phase::Idle;
                        drop(st);
                        line.changed.notify_waiters();
                        return Err(e);
                    }
                }
            }
            if tokio::time::timeout_at(deadline, wait).await.is_err() {
                return Err(ChatError::Unavailable("the channel's ordering lease"));
            }
        }
    }

    fn finished(self: &Arc<Self>, c: ChannelId, emitted: Option<MessageId>) {
        let line = self.line(c);
        let mut st = line.st.lock();
        st.inflight -= 1;
        if let Some(id) = emitted {
            st.unacked += 1;
            st.max_id = st.max_id.max(id.0);
        }
        self.maybe_release(c, &line, &mut st);
    }
}
