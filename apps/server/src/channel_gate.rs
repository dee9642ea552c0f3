//! Cross-node order of MESSAGE_CREATE per channel (see `hearth_chat::ChannelGate`).
//!
//! A node mints IDs for a channel only while it holds the channel's lease
//! (`hearth_state::Leases`, in Redis). It lets go once nothing it minted is
//! in flight *and* every MESSAGE_CREATE it emitted is stored in the bus log,
//! leaving its highest ID as the floor for the next holder. So whoever mints
//! next mints higher and appends later: the log's order is the ID order.
//!
//! A node idle on the channel lets go at once (one acquire and one release
//! per burst of sends); a busy node is asked to hand over by a waiting node
//! (checked every [`ASK_CHECK`]) and stops taking new sends until it has.
//! A node that dies holding a lease holds it at most [`TTL`]; by then the
//! clock has moved past every ID it minted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hearth_chat::{ChannelGate, ChatError};
use hearth_state::Leases;
use hearth_types::{ChannelId, MessageId};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Lease life without renewal.
pub const TTL: Duration = Duration::from_secs(2);
/// How often held leases are renewed and checked for handover requests.
pub const ASK_CHECK: Duration = Duration::from_millis(20);
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
}

struct Line {
    st: Mutex<LineState>,
    changed: Notify,
}

pub struct ClusterGate {
    leases: Arc<dyn Leases>,
    holder: String,
    lines: Mutex<HashMap<ChannelId, Arc<Line>>>,
}

fn key(c: ChannelId) -> String {
    format!("chan:{c}")
}

impl ClusterGate {
    pub fn start(leases: Arc<dyn Leases>, holder: String) -> Arc<ClusterGate> {
        let g = Arc::new(ClusterGate {
            leases,
            holder,
            lines: Mutex::new(HashMap::new()),
        });
        tokio::spawn(Self::tend(Arc::downgrade(&g)));
        g
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

    /// Renews held leases and hands over those another node asked for.
    async fn tend(me: std::sync::Weak<ClusterGate>) {
        let mut tick = tokio::time::interval(ASK_CHECK);
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
            for (c, line) in held {
                if me.leases.requested(&key(c)).await.unwrap_or(false) {
                    let mut st = line.st.lock();
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
                let got = loop {
                    match self.leases.acquire(&key(c), &self.holder, TTL).await {
                        Ok(Some(floor)) => break Ok(floor),
                        Ok(None) if tokio::time::Instant::now() < deadline => {
                            let _ = self.leases.request(&key(c), TTL / 10).await;
                            tokio::time::sleep(Duration::from_millis(1)).await;
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
