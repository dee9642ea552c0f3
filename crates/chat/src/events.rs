//! What the chat domain announces. The gateway turns these into dispatches
//! for the connections allowed to see them.

use hearth_store::{ChannelRecord, CommunityRecord, MemberRecord, ReadStateRecord, RoleRecord};
use hearth_types::{ChannelId, CommunityId, MessageId, RoleId, UserId};

use crate::MessageView;

#[derive(Clone, Debug)]
pub enum ChatEvent {
    MessageCreate(MessageView),
    MessageUpdate(MessageView),
    MessageDelete {
        channel_id: ChannelId,
        community_id: Option<CommunityId>,
        id: MessageId,
    },
    ReactionAdd {
        channel_id: ChannelId,
        community_id: Option<CommunityId>,
        message_id: MessageId,
        user_id: UserId,
        emoji: String,
    },
    ReactionRemove {
        channel_id: ChannelId,
        community_id: Option<CommunityId>,
        message_id: MessageId,
        user_id: UserId,
        emoji: String,
    },
    PinsUpdate {
        channel_id: ChannelId,
        community_id: Option<CommunityId>,
        message_id: MessageId,
        pinned: bool,
    },
    ChannelCreate(ChannelRecord),
    /// A new DM or group DM, with its participants (clients show their names).
    PrivateChannelCreate {
        channel: ChannelRecord,
        recipients: Vec<hearth_store::UserRecord>,
    },
    ChannelUpdate(ChannelRecord),
    ChannelDelete(ChannelRecord),
    /// `user_id` joined (or created) the community.
    CommunityCreate {
        community: CommunityRecord,
        user_id: UserId,
    },
    CommunityUpdate(CommunityRecord),
    CommunityDelete {
        id: CommunityId,
    },
    MemberAdd(MemberRecord),
    MemberUpdate(MemberRecord),
    MemberRemove {
        community_id: CommunityId,
        user_id: UserId,
    },
    RoleCreate(RoleRecord),
    RoleUpdate(RoleRecord),
    RoleDelete {
        community_id: CommunityId,
        role_id: RoleId,
    },
    TypingStart {
        channel_id: ChannelId,
        community_id: Option<CommunityId>,
        user_id: UserId,
        at_ms: i64,
    },
    ReadStateUpdate {
        user_id: UserId,
        state: ReadStateRecord,
    },
    /// Permissions in the community may have changed for anyone: caches and
    /// live subscriptions must re-check.
    PermissionsChanged {
        community_id: CommunityId,
    },
    /// An audited change (configuration or moderation), for the audit log;
    /// never shown to clients.
    Audit(Box<crate::audit::AuditDraft>),
    /// Several messages of one channel deleted at once.
    MessageDeleteBulk {
        channel_id: ChannelId,
        community_id: Option<CommunityId>,
        ids: Vec<MessageId>,
    },
}

pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: ChatEvent);
}

/// For tools that change data without anyone listening (the admin CLI).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: ChatEvent) {}
}
