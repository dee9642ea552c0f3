//! From the bus's events to index operations. The data is the gateway-shaped
//! JSON the server publishes (`apps/server/src/events.rs`, message JSON from
//! `http/wire.rs`); only the fields search needs are read, unknown ones are
//! ignored, so the wire can grow without breaking the consumer.

use hearth_types::{ChannelId, CommunityId, MessageId, RoleId, UserId};
use serde::Deserialize;

use crate::error::EventError;
use crate::message::{Has, IndexedMessage, Op};

/// The event kinds that change the index. Every other kind maps to no ops.
pub const KINDS: [&str; 7] = [
    "MESSAGE_CREATE",
    "MESSAGE_UPDATE",
    "MESSAGE_DELETE",
    "MESSAGE_DELETE_BULK",
    "CHANNEL_DELETE",
    "COMMUNITY_DELETE",
    "CHANNEL_PINS_UPDATE",
];

/// Maps one event (its dispatch name and its JSON data) to index ops.
/// Kinds search does not care about give `Ok(vec![])`; a kind it cares
/// about whose data does not parse is an error (the consumer dead-letters
/// it).
pub fn ops_from_event(kind: &str, data: &[u8]) -> Result<Vec<Op>, EventError> {
    let parse_err = |source| EventError {
        kind: kind.to_string(),
        source,
    };
    Ok(match kind {
        "MESSAGE_CREATE" | "MESSAGE_UPDATE" => {
            let m: WireMessage = serde_json::from_slice(data).map_err(parse_err)?;
            vec![Op::Upsert(m.into_indexed())]
        }
        "MESSAGE_DELETE" => {
            let d: WireId<MessageId> = serde_json::from_slice(data).map_err(parse_err)?;
            vec![Op::Delete { id: d.id }]
        }
        "MESSAGE_DELETE_BULK" => {
            let d: WireBulk = serde_json::from_slice(data).map_err(parse_err)?;
            vec![Op::BulkDelete { ids: d.ids }]
        }
        "CHANNEL_DELETE" => {
            let d: WireChannelDelete = serde_json::from_slice(data).map_err(parse_err)?;
            // A made-up per-user CHANNEL_DELETE (lost sight of a channel)
            // says nothing about the channel's messages.
            if d.reason.is_some() {
                vec![]
            } else {
                vec![Op::DeleteChannel { channel_id: d.id }]
            }
        }
        "COMMUNITY_DELETE" => {
            let d: WireCommunityDelete = serde_json::from_slice(data).map_err(parse_err)?;
            // `removed: true` is a member leaving, not the community going.
            if d.removed || d.unavailable {
                vec![]
            } else {
                vec![Op::DeleteCommunity { community_id: d.id }]
            }
        }
        "CHANNEL_PINS_UPDATE" => {
            let d: WirePins = serde_json::from_slice(data).map_err(parse_err)?;
            vec![Op::SetPinned {
                id: d.message_id,
                pinned: d.pinned,
            }]
        }
        _ => vec![],
    })
}

#[derive(Deserialize)]
struct WireId<T> {
    id: T,
}

#[derive(Deserialize)]
struct WireBulk {
    ids: Vec<MessageId>,
}

#[derive(Deserialize)]
struct WireChannelDelete {
    id: ChannelId,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct WireCommunityDelete {
    id: CommunityId,
    #[serde(default)]
    removed: bool,
    #[serde(default)]
    unavailable: bool,
}

#[derive(Deserialize)]
struct WirePins {
    message_id: MessageId,
    pinned: bool,
}

#[derive(Deserialize)]
struct WireAuthor {
    id: UserId,
}

#[derive(Deserialize)]
struct WireAttachment {
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    id: MessageId,
    channel_id: ChannelId,
    #[serde(default)]
    community_id: Option<CommunityId>,
    author: WireAuthor,
    #[serde(default)]
    content: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    edited_at: Option<String>,
    #[serde(default)]
    reply_to_id: Option<MessageId>,
    #[serde(default)]
    mentions: Vec<UserId>,
    #[serde(default)]
    mention_roles: Vec<RoleId>,
    #[serde(default)]
    mention_everyone: bool,
    #[serde(default)]
    attachments: Vec<WireAttachment>,
    #[serde(default)]
    embeds: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pinned: bool,
}

impl WireMessage {
    fn into_indexed(self) -> IndexedMessage {
        let has = Has::detect(
            &self.content,
            self.attachments
                .iter()
                .map(|a| (a.content_type.as_deref(), a.filename.as_deref())),
            !self.embeds.is_empty(),
        );
        IndexedMessage {
            id: self.id,
            channel_id: self.channel_id,
            community_id: self.community_id,
            author_id: self.author.id,
            created_at_ms: self
                .created_at
                .as_deref()
                .and_then(hearth_types::parse_rfc3339)
                .unwrap_or_else(|| self.id.created_ms()),
            edited_at_ms: self
                .edited_at
                .as_deref()
                .and_then(hearth_types::parse_rfc3339),
            content: self.content,
            mentions: self.mentions,
            role_mentions: self.mention_roles,
            mentions_everyone: self.mention_everyone,
            has,
            pinned: self.pinned,
            reply_to: self.reply_to_id,
        }
    }
}
