//! From domain events to the bus. The chat domain announces changes through
//! [`EventSink`]; this edge encodes each one once, as the JSON the gateway
//! will dispatch (`t` and `d`), wraps it in a CloudEvents envelope and hands
//! it to one publisher task. The queue is bounded: if the bus stalls, events
//! are dropped and counted rather than stalling requests.

use std::sync::Arc;

use hearth_bus::{Bus, Envelope};
use hearth_chat::{ChatEvent, EventSink};
use hearth_types::IdGenerator;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http::wire;
use crate::metrics::Metrics;

const QUEUE: usize = 65_536;

#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Envelope>,
    ids: Arc<IdGenerator>,
    source: String,
    metrics: Metrics,
}

impl Publisher {
    /// Starts the publisher task.
    pub fn start(
        bus: Arc<dyn Bus>,
        ids: Arc<IdGenerator>,
        node: u16,
        metrics: Metrics,
    ) -> Publisher {
        let (tx, mut rx) = mpsc::channel::<Envelope>(QUEUE);
        let m = metrics.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let ty = ev.ty.clone();
                let outcome = if bus.publish(ev).await.is_ok() {
                    "published"
                } else {
                    "failed"
                };
                m.events.with_label_values(&[&ty, outcome]).inc();
            }
        });
        Publisher {
            tx,
            ids,
            source: format!("hearth://node/{node}"),
            metrics,
        }
    }

    /// Queues one event: `t` is the gateway dispatch name, `subject` routes it.
    pub fn publish(&self, t: &str, subject: String, d: Value) {
        let data = json!({ "t": t, "d": d }).to_string();
        let env = Envelope::json(
            self.ids.next().0.to_string(),
            self.source.clone(),
            format!("hearth.{t}"),
            subject,
            data,
        );
        if self.tx.try_send(env).is_err() {
            self.metrics
                .events
                .with_label_values(&[&format!("hearth.{t}"), "dropped"])
                .inc();
        }
    }
}

fn community_subject(c: impl std::fmt::Display) -> String {
    format!("chat.community.{c}")
}

fn channel_subject(
    community: Option<hearth_types::CommunityId>,
    channel: hearth_types::ChannelId,
) -> String {
    match community {
        Some(c) => format!("chat.community.{c}.channel.{channel}"),
        None => format!("chat.private.{channel}"),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl EventSink for Publisher {
    fn emit(&self, event: ChatEvent) {
        use ChatEvent::*;
        match event {
            MessageCreate(v) => self.publish("MESSAGE_CREATE", channel_subject(v.community_id, v.record.channel_id), to_value(&wire::Message::from(&v))),
            MessageUpdate(v) => self.publish("MESSAGE_UPDATE", channel_subject(v.community_id, v.record.channel_id), to_value(&wire::Message::from(&v))),
            MessageDelete { channel_id, community_id, id } => self.publish(
                "MESSAGE_DELETE",
                channel_subject(community_id, channel_id),
                json!({ "id": id.to_string(), "channel_id": channel_id.to_string(), "community_id": community_id.map(|c| c.to_string()) }),
            ),
            ReactionAdd { channel_id, community_id, message_id, user_id, emoji } => self.publish(
                "REACTION_ADD",
                channel_subject(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "message_id": message_id.to_string(), "user_id": user_id.to_string(), "emoji": emoji }),
            ),
            ReactionRemove { channel_id, community_id, message_id, user_id, emoji } => self.publish(
                "REACTION_REMOVE",
                channel_subject(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "message_id": message_id.to_string(), "user_id": user_id.to_string(), "emoji": emoji }),
            ),
            PinsUpdate { channel_id, community_id, message_id, pinned } => self.publish(
                "CHANNEL_PINS_UPDATE",
                channel_subject(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "message_id": message_id.to_string(), "pinned": pinned }),
            ),
            ChannelCreate(c) => self.publish("CHANNEL_CREATE", channel_subject(c.community_id, c.id), to_value(&wire::Channel::from(&c))),
            PrivateChannelCreate { channel, recipients } => self.publish(
                "CHANNEL_CREATE",
                channel_subject(channel.community_id, channel.id),
                to_value(&wire::Channel::new(&channel, Some(&recipients))),
            ),
            ChannelUpdate(c) => self.publish("CHANNEL_UPDATE", channel_subject(c.community_id, c.id), to_value(&wire::Channel::from(&c))),
            ChannelDelete(c) => self.publish("CHANNEL_DELETE", channel_subject(c.community_id, c.id), to_value(&wire::Channel::from(&c))),
            CommunityCreate { community, user_id } => self.publish(
                "COMMUNITY_CREATE",
                format!("chat.user.{user_id}"),
                to_value(&wire::Community::from(&community)),
            ),
            CommunityUpdate(c) => self.publish("COMMUNITY_UPDATE", community_subject(c.id), to_value(&wire::Community::from(&c))),
            CommunityDelete { id } => self.publish("COMMUNITY_DELETE", community_subject(id), json!({ "id": id.to_string() })),
            MemberAdd(m) => {
                let mut d = to_value(&wire::Member::from(&m));
                d["community_id"] = json!(m.community_id.to_string());
                self.publish("MEMBER_ADD", community_subject(m.community_id), d)
            }
            MemberUpdate(m) => {
                let mut d = to_value(&wire::Member::from(&m));
                d["community_id"] = json!(m.community_id.to_string());
                self.publish("MEMBER_UPDATE", community_subject(m.community_id), d)
            }
            MemberRemove { community_id, user_id } => self.publish(
                "MEMBER_REMOVE",
                community_subject(community_id),
                json!({ "community_id": community_id.to_string(), "user_id": user_id.to_string() }),
            ),
            RoleCreate(r) => self.publish("ROLE_CREATE", community_subject(r.community_id), to_value(&wire::Role::from(&r))),
            RoleUpdate(r) => self.publish("ROLE_UPDATE", community_subject(r.community_id), to_value(&wire::Role::from(&r))),
            RoleDelete { community_id, role_id } => self.publish(
                "ROLE_DELETE",
                community_subject(community_id),
                json!({ "community_id": community_id.to_string(), "role_id": role_id.to_string() }),
            ),
            TypingStart { channel_id, community_id, user_id, at_ms } => self.publish(
                "TYPING_START",
                channel_subject(community_id, channel_id),
                json!({ "channel_id": channel_id.to_string(), "user_id": user_id.to_string(), "timestamp": hearth_types::format_rfc3339(at_ms) }),
            ),
            ReadStateUpdate { user_id, state } => {
                self.publish("READ_STATE_UPDATE", format!("chat.user.{user_id}"), to_value(&wire::ReadState::from(&state)))
            }
            PermissionsChanged { community_id } => self.publish(
                "PERMISSIONS_CHANGED",
                format!("internal.permissions.{community_id}"),
                json!({ "community_id": community_id.to_string() }),
            ),
        }
    }
}
