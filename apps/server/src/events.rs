//! From domain events to the bus. The chat domain announces changes through
//! [`EventSink`]; this edge encodes each one once, as the JSON the gateway
//! will dispatch (`t` and `d`), wraps it in a CloudEvents envelope and hands
//! it to one publisher task. The queue is bounded: if the bus stalls, events
//! are dropped and counted rather than stalling requests.
//!
//! Chat events (subjects under `chat.`) are appended to the bus log, which
//! resumes replay from; the rest (presence, nudges) are real-time only. A
//! MESSAGE_CREATE's envelope id is the message id, so appending it again
//! (a retried send after a node died) stores it once, and a send is
//! answered only once its event is stored ([`Publisher::message_stored`]):
//! every acknowledged message reaches every resuming client.
//!
//! Subjects and event names are typed ([`Subject`], [`EventKind`] in
//! `kinds.rs`): built here, parsed once by the gateway.

mod appender;
mod kinds;

pub use kinds::{Change, EventKind, LIVE_PREFIXES, Subject, decode_change};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_bus::{Bus, Envelope};
use hearth_chat::{ChatEvent, EventSink};
use hearth_types::{ChannelId, IdGenerator, MessageId};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::channel_gate::ClusterGate;
use crate::http::wire;
use crate::metrics::Metrics;

const QUEUE: usize = 65_536;

/// MESSAGE_CREATEs stored in the log, or awaited by their send.
enum Stored {
    Done,
    Waiting(Vec<oneshot::Sender<()>>),
}

/// Stored-or-awaited entries, plus the order `Done` ones were added in, so
/// forgetting the old ones costs O(1) per event rather than a scan.
#[derive(Default)]
struct StoredMap {
    map: HashMap<i64, Stored>,
    done: std::collections::VecDeque<(Instant, i64)>,
}

#[derive(Clone)]
pub struct Publisher {
    /// Events with, for a MESSAGE_CREATE sent through the channel gate, its
    /// channel (the gate lets go of the channel once it is stored).
    tx: mpsc::Sender<appender::Work>,
    ids: Arc<IdGenerator>,
    source: String,
    metrics: Metrics,
    /// Whether appends need waiting for (a shared log; in-process appends
    /// are stored when sent).
    durable: bool,
    stored: Arc<Mutex<StoredMap>>,
    gate: Option<Arc<ClusterGate>>,
}

/// How long a send waits for its event to be stored before answering 503:
/// one append whose acknowledgement is lost with a NATS server (the
/// client's 5 s request timeout) and a second one, with margin.
const STORE_WAIT: Duration = Duration::from_secs(12);

impl Publisher {
    /// Starts the publisher task (and, for a shared log, the task that
    /// collects storage acknowledgements in order).
    pub fn start(
        bus: Arc<dyn Bus>,
        ids: Arc<IdGenerator>,
        node: u16,
        metrics: Metrics,
        gate: Option<Arc<ClusterGate>>,
    ) -> Publisher {
        let stored: Arc<Mutex<StoredMap>> = Arc::default();
        let durable = bus.name() != "memory";
        let (m, st, gate2) = (metrics.clone(), stored.clone(), gate.clone());
        let on_outcome = move |o: appender::Outcome| {
            if let (Some(c), Some(g)) = (o.gated, &gate2) {
                g.acked(c);
            }
            let ty = o.event.ty.as_str();
            m.events
                .with_label_values(&[ty, if o.stored { "published" } else { "failed" }])
                .inc();
            if o.stored
                && durable
                && ty == "hearth.MESSAGE_CREATE"
                && let Ok(id) = o.event.id.parse::<i64>()
            {
                mark_stored(&st, id);
            }
        };
        let m = metrics.clone();
        let on_publish = move |ty: &str, ok: bool| {
            m.events
                .with_label_values(&[ty, if ok { "published" } else { "failed" }])
                .inc();
        };
        let tx = appender::start(bus, QUEUE, on_outcome, on_publish);
        Publisher {
            tx,
            ids,
            source: format!("hearth://node/{node}"),
            metrics,
            durable,
            stored,
            gate,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// A fresh time-ordered id (for records this node makes, such as an
    /// admin action's audit entry).
    pub fn next_id(&self) -> i64 {
        self.ids.next().0
    }

    /// Queues one event: `kind` is the gateway dispatch name, `subject`
    /// routes it (under `chat.` it goes to the log).
    pub fn publish_event(&self, kind: EventKind, subject: Subject, d: Value) {
        self.send(
            self.ids.next().0.to_string(),
            kind.as_str(),
            subject.to_string(),
            d,
            None,
        );
    }

    /// [`Publisher::publish_event`] for names and subjects given as text
    /// (kept for callers outside the gateway; prefer the typed one).
    pub fn publish(&self, t: &str, subject: String, d: Value) {
        self.send(self.ids.next().0.to_string(), t, subject, d, None);
    }

    fn send(&self, id: String, t: &str, subject: String, d: Value, gated: Option<ChannelId>) {
        let data = json!({ "t": t, "d": d }).to_string();
        let env = Envelope::json(
            id,
            self.source.clone(),
            format!("hearth.{t}"),
            subject,
            data,
        );
        if let Err(e) = self.tx.try_send(appender::Work::Event(env, gated)) {
            self.metrics
                .events
                .with_label_values(&[&format!("hearth.{t}"), "dropped"])
                .inc();
            // A dropped event is never stored: the gate must not wait for it.
            if let (appender::Work::Event(_, Some(c)), Some(g)) = (e.into_inner(), &self.gate) {
                g.acked(c);
            }
        }
    }

    /// Waits until the MESSAGE_CREATE of `id` is stored in the log (at most
    /// a few seconds: the message itself is stored either way). Immediate
    /// with the in-process bus.
    pub async fn message_stored(&self, id: MessageId) -> bool {
        if !self.durable || hearth_types::now_ms() - id.created_ms() > 60_000 {
            return true;
        }
        let rx = {
            let mut guard = self.stored.lock();
            let st = &mut guard.map;
            match st.remove(&id.0) {
                Some(Stored::Done) => return true,
                Some(Stored::Waiting(mut w)) => {
                    let (tx, rx) = oneshot::channel();
                    w.push(tx);
                    st.insert(id.0, Stored::Waiting(w));
                    rx
                }
                None => {
                    let (tx, rx) = oneshot::channel();
                    st.insert(id.0, Stored::Waiting(vec![tx]));
                    rx
                }
            }
        };
        let ok = matches!(tokio::time::timeout(STORE_WAIT, rx).await, Ok(Ok(())));
        if !ok {
            self.stored.lock().map.remove(&id.0);
            tracing::warn!(message = id.0, "a message's event was not stored in time");
        }
        ok
    }

    /// Appends a message's MESSAGE_CREATE again (same envelope id, so the
    /// log keeps one): a retried send may follow a node that stored the
    /// message and died before its event was stored.
    pub fn republish_message(&self, v: &hearth_chat::MessageView) {
        // Only within the log's de-duplication window (2 min; 60 s leaves
        // margin): later, a copy would be stored twice.
        let age = hearth_types::now_ms() - v.record.id.created_ms();
        if self.durable && age < 60_000 {
            self.send(
                v.record.id.0.to_string(),
                EventKind::MessageCreate.as_str(),
                Subject::channel(v.community_id, v.record.channel_id).to_string(),
                to_value(&wire::Message::from(v)),
                None,
            );
        }
    }
}

fn mark_stored(st: &Mutex<StoredMap>, id: i64) {
    let mut st = st.lock();
    match st.map.remove(&id) {
        Some(Stored::Waiting(w)) => {
            for tx in w {
                let _ = tx.send(());
            }
        }
        _ => {
            // Nobody waits yet (the send has not got here): remember briefly.
            let now = Instant::now();
            while let Some(&(at, old)) = st.done.front() {
                if now.duration_since(at) < Duration::from_secs(30) {
                    break;
                }
                st.done.pop_front();
                if matches!(st.map.get(&old), Some(Stored::Done)) {
                    st.map.remove(&old);
                }
            }
            st.map.insert(id, Stored::Done);
            st.done.push_back((now, id));
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl EventSink for Publisher {
    fn emit(&self, event: ChatEvent) {
        use ChatEvent::*;
        use EventKind as K;
        let channel = Subject::channel;
        let community = Subject::Community;
        match event {
            MessageCreate(v) => self.send(
                v.record.id.0.to_string(),
                K::MessageCreate.as_str(),
                channel(v.community_id, v.record.channel_id).to_string(),
                to_value(&wire::Message::from(&v)),
                self.gate.as_ref().map(|_| v.record.channel_id),
            ),
            MessageUpdate(v) => self.publish_event(K::MessageUpdate, channel(v.community_id, v.record.channel_id), to_value(&wire::Message::from(&v))),
            MessageDelete { channel_id, community_id, id } => self.publish_event(
                K::MessageDelete,
                channel(community_id, channel_id),
                json!({ "id": id.to_string(), "channel_id": channel_id.to_string(), "community_id": community_id.map(|c| c.to_string()) }),
            ),
            ReactionAdd { channel_id, community_id, message_id, user_id, emoji } => self.publish_event(
                K::ReactionAdd,
                channel(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "message_id": message_id.to_string(), "user_id": user_id.to_string(), "emoji": emoji }),
            ),
            ReactionRemove { channel_id, community_id, message_id, user_id, emoji } => self.publish_event(
                K::ReactionRemove,
                channel(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "message_id": message_id.to_string(), "user_id": user_id.to_string(), "emoji": emoji }),
            ),
            PinsUpdate { channel_id, community_id, message_id, pinned } => self.publish_event(
                K::ChannelPinsUpdate,
                channel(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "message_id": message_id.to_string(), "pinned": pinned }),
            ),
            ChannelCreate(c) => self.publish_event(K::ChannelCreate, channel(c.community_id, c.id), to_value(&wire::Channel::from(&c))),
            // The participants travel with it: the gateway delivers it to
            // them alone, without asking anyone.
            PrivateChannelCreate { channel: ch, recipients } => self.publish_event(
                K::ChannelCreate,
                channel(ch.community_id, ch.id),
                to_value(&wire::Channel::new(&ch, Some(&recipients))),
            ),
            ChannelUpdate(c) => self.publish_event(K::ChannelUpdate, channel(c.community_id, c.id), to_value(&wire::Channel::from(&c))),
            ChannelDelete(c) => self.publish_event(K::ChannelDelete, channel(c.community_id, c.id), to_value(&wire::Channel::from(&c))),
            CommunityCreate { community: c, user_id } => self.publish_event(
                K::CommunityCreate,
                Subject::User(user_id),
                to_value(&wire::Community::from(&c)),
            ),
            CommunityUpdate(c) => self.publish_event(K::CommunityUpdate, community(c.id), to_value(&wire::Community::from(&c))),
            CommunityDelete { id } => self.publish_event(K::CommunityDelete, community(id), json!({ "id": id.to_string() })),
            MemberAdd(m) => {
                let mut d = to_value(&wire::Member::from(&m));
                d["community_id"] = json!(m.community_id.to_string());
                self.publish_event(K::MemberAdd, community(m.community_id), d)
            }
            MemberUpdate(m) => {
                let mut d = to_value(&wire::Member::from(&m));
                d["community_id"] = json!(m.community_id.to_string());
                self.publish_event(K::MemberUpdate, community(m.community_id), d)
            }
            MemberRemove { community_id, user_id } => self.publish_event(
                K::MemberRemove,
                community(community_id),
                json!({ "community_id": community_id.to_string(), "user_id": user_id.to_string() }),
            ),
            RoleCreate(r) => self.publish_event(K::RoleCreate, community(r.community_id), to_value(&wire::Role::from(&r))),
            RoleUpdate(r) => self.publish_event(K::RoleUpdate, community(r.community_id), to_value(&wire::Role::from(&r))),
            RoleDelete { community_id, role_id } => self.publish_event(
                K::RoleDelete,
                community(community_id),
                json!({ "community_id": community_id.to_string(), "role_id": role_id.to_string() }),
            ),
            TypingStart { channel_id, community_id, user_id, at_ms } => self.publish_event(
                K::TypingStart,
                channel(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "user_id": user_id.to_string(), "timestamp": hearth_types::format_rfc3339(at_ms) }),
            ),
            ReadStateUpdate { user_id, state } => {
                self.publish_event(K::ReadStateUpdate, Subject::User(user_id), to_value(&wire::ReadState::from(&state)))
            }
            PermissionsChanged { community_id } => self.publish_event(
                K::PermissionsChanged,
                Subject::Permissions(community_id),
                json!({ "community_id": community_id.to_string() }),
            ),
            MessageDeleteBulk { channel_id, community_id, ids } => self.publish_event(
                K::MessageDeleteBulk,
                channel(community_id, channel_id),
                json!({ "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>(), "channel_id": channel_id.to_string(), "community_id": community_id.map(|c| c.to_string()) }),
            ),
            // In the log for the audit consumer; the gateway never delivers it.
            Audit(d) => self.publish_event(
                K::AuditLogEntry,
                Subject::Audit(d.community_id),
                crate::moderation::audit_payload(&d),
            ),
        }
    }
}
