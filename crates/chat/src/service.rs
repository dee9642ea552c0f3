//! The [`Chat`] service: shared state and the permission helpers every
//! resource module uses.

use std::sync::Arc;

use hearth_rbac::{Permissions, channel_permissions, community_permissions};
use hearth_store::{ChannelRecord, CommunityRecord, Store};
use hearth_types::{ChannelId, CommunityId, IdGenerator, UserId};

use crate::error::{ChatError, ChatResult};
use crate::events::{ChatEvent, EventSink};
use crate::perms::{self, Context, PermCache};

#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// How long a message nonce stays a duplicate guard (contract: 24 h).
    pub nonce_window_ms: i64,
    /// The most users one message's mentions may notify (role and
    /// `@everyone` mentions beyond this are stored but do not count).
    pub mention_fanout_limit: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            nonce_window_ms: 24 * 3600 * 1000,
            mention_fanout_limit: 1000,
        }
    }
}

pub struct Chat {
    /// Channel and author records for the send path, kept briefly (see `hot.rs`).
    pub(crate) hot: crate::hot::HotRecords,
    /// Per-channel ordering of MESSAGE_CREATE (see `ordering.rs`).
    pub(crate) sequencer: crate::ordering::Sequencer,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) ids: Arc<IdGenerator>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) cache: PermCache,
    pub(crate) cfg: ChatConfig,
    /// Cross-node ordering of sends (a cluster); none on one node.
    pub(crate) gate: Option<Arc<dyn crate::ChannelGate>>,
    /// Slowmode's clock (shared by every node in a cluster).
    pub(crate) cooldowns: Arc<dyn crate::Cooldowns>,
    /// Checks every community message before it is stored (automod).
    pub(crate) send_filter: Option<Arc<dyn crate::SendFilter>>,
}

pub(crate) fn require(have: Permissions, need: Permissions) -> ChatResult<()> {
    if have.contains(need) {
        Ok(())
    } else {
        Err(ChatError::Forbidden(need - have))
    }
}

impl Chat {
    pub fn new(
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        events: Arc<dyn EventSink>,
        cfg: ChatConfig,
    ) -> Self {
        Chat {
            sequencer: Default::default(),
            hot: Default::default(),
            store,
            ids,
            events,
            cache: PermCache::default(),
            cfg,
            gate: None,
            cooldowns: Arc::new(crate::MemoryCooldowns::default()),
            send_filter: None,
        }
    }

    /// Keeps slowmode's clock in `cooldowns` (shared by every node).
    pub fn with_cooldowns(mut self, cooldowns: Arc<dyn crate::Cooldowns>) -> Self {
        self.cooldowns = cooldowns;
        self
    }

    /// Asks `filter` about every message sent to a community channel.
    pub fn with_send_filter(mut self, filter: Arc<dyn crate::SendFilter>) -> Self {
        self.send_filter = Some(filter);
        self
    }

    /// Orders each channel's sends across nodes through `gate`.
    pub fn with_gate(mut self, gate: Arc<dyn crate::ChannelGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    pub(crate) fn emit(&self, e: ChatEvent) {
        self.events.emit(e);
    }

    /// Announces an audited change (see `audit.rs`).
    pub(crate) fn audit(&self, draft: crate::audit::AuditDraft) {
        self.events.emit(ChatEvent::Audit(Box::new(draft)));
    }

    /// Forgets every cached permission of a community, here and (through the
    /// event) on every node listening.
    pub(crate) fn permissions_changed(&self, c: CommunityId) {
        self.cache.bump(c);
        self.emit(ChatEvent::PermissionsChanged { community_id: c });
    }

    /// For a change announced by another node.
    pub fn invalidate_community(&self, c: CommunityId) {
        self.cache.bump(c);
    }

    pub(crate) fn next_id(&self) -> i64 {
        self.ids.next().0
    }

    /// The actor's membership context, or NotFound if not a member.
    pub(crate) async fn context(&self, c: CommunityId, user: UserId) -> ChatResult<Context> {
        let community = self.store.community(c).await?.ok_or(ChatError::NotFound)?;
        let member = self
            .store
            .member(c, user)
            .await?
            .ok_or(ChatError::NotFound)?;
        let roles = self.store.roles(c).await?;
        let facts = perms::facts(&community, &member, &roles);
        Ok(Context { member, facts })
    }

    /// Community-wide permissions; NotFound unless the user is a member.
    pub async fn community_permissions(
        &self,
        c: CommunityId,
        user: UserId,
    ) -> ChatResult<Permissions> {
        if let Some(p) = self.cache.get(user, c.0, c) {
            return Ok(p);
        }
        let generation = self.cache.generation(c);
        let ctx = self.context(c, user).await?;
        let p = community_permissions(&ctx.facts);
        self.cache
            .put(user, c.0, generation, p, ctx.member.timed_out_until);
        Ok(p)
    }

    /// Permissions in a channel; `EMPTY` when the user is not a member or
    /// participant (so callers treat "cannot view" and "not there" alike).
    pub async fn channel_permissions(
        &self,
        ch: &ChannelRecord,
        user: UserId,
    ) -> ChatResult<Permissions> {
        let Some(c) = ch.community_id else {
            return Ok(if self.store.is_recipient(ch.id, user).await? {
                perms::PRIVATE_CHANNEL
            } else {
                Permissions::EMPTY
            });
        };
        if let Some(p) = self.cache.get(user, ch.id.0, c) {
            return Ok(p);
        }
        let generation = self.cache.generation(c);
        let ctx = match self.context(c, user).await {
            Ok(ctx) => ctx,
            Err(ChatError::NotFound) => return Ok(Permissions::EMPTY),
            Err(e) => return Err(e),
        };
        let ows = perms::overwrites(&self.store.overwrites(ch.id).await?);
        let p = channel_permissions(&ctx.facts, &ows);
        self.cache
            .put(user, ch.id.0, generation, p, ctx.member.timed_out_until);
        Ok(p)
    }

    /// The channel if the user may VIEW it, with their permissions there.
    pub async fn visible_channel(
        &self,
        id: ChannelId,
        user: UserId,
    ) -> ChatResult<(ChannelRecord, Permissions)> {
        let ch = self.store.channel(id).await?.ok_or(ChatError::NotFound)?;
        let p = self.channel_permissions(&ch, user).await?;
        if !p.contains(Permissions::VIEW_CHANNEL) {
            return Err(ChatError::NotFound);
        }
        Ok((ch, p))
    }

    /// Refuses an action that needs no permission bit of its own (editing
    /// one's message, taking back one's reaction) while a timeout holds the
    /// actor back in the channel's community (contract v1.1, "Timeouts").
    pub(crate) async fn not_timed_out(&self, ch: &ChannelRecord, actor: UserId) -> ChatResult<()> {
        let Some(c) = ch.community_id else {
            return Ok(());
        };
        let ctx = self.context(c, actor).await?;
        if hearth_rbac::restricted_by_timeout(&ctx.facts) {
            return Err(ChatError::Refused("you are timed out in this community"));
        }
        Ok(())
    }

    /// The community if the user is a member.
    pub async fn visible_community(
        &self,
        c: CommunityId,
        user: UserId,
    ) -> ChatResult<(CommunityRecord, Permissions)> {
        let p = self.community_permissions(c, user).await?;
        let community = self.store.community(c).await?.ok_or(ChatError::NotFound)?;
        Ok((community, p))
    }

    /// Like [`Chat::visible_channel`] but from the short-lived record cache:
    /// for hot paths that do not show `last_message_id`.
    pub(crate) async fn visible_channel_hot(
        &self,
        id: ChannelId,
        user: UserId,
    ) -> ChatResult<(ChannelRecord, Permissions)> {
        let ch = match self.hot.channel(id) {
            Some(ch) => ch,
            None => {
                let ch = self.store.channel(id).await?.ok_or(ChatError::NotFound)?;
                self.hot.put_channel(ch.clone());
                ch
            }
        };
        let p = self.channel_permissions(&ch, user).await?;
        if !p.contains(Permissions::VIEW_CHANNEL) {
            return Err(ChatError::NotFound);
        }
        Ok((ch, p))
    }

    /// A profile changed (display name, avatar): stop serving the cached copy.
    pub fn user_changed(&self, user: UserId) {
        self.hot.forget_user(user);
    }

    /// Whether `user` may VIEW a community channel now, by ids alone (the
    /// gateway asks this per event; answered from the cache when warm).
    pub async fn can_view_in(&self, c: CommunityId, channel: ChannelId, user: UserId) -> bool {
        if let Some(p) = self.cache.get(user, channel.0, c) {
            return p.contains(Permissions::VIEW_CHANNEL);
        }
        match self.store.channel(channel).await {
            Ok(Some(ch)) if ch.community_id == Some(c) => self.can_view(&ch, user).await,
            _ => false,
        }
    }

    /// Whether `user` is a participant of a DM or group DM.
    pub async fn is_participant(&self, channel: ChannelId, user: UserId) -> bool {
        matches!(self.store.is_recipient(channel, user).await, Ok(true))
    }

    /// Whether `user` may see `channel` now (the gateway asks this per event).
    pub async fn can_view(&self, ch: &ChannelRecord, user: UserId) -> bool {
        matches!(self.channel_permissions(ch, user).await, Ok(p) if p.contains(Permissions::VIEW_CHANNEL))
    }

    pub(crate) fn is_private(ch: &ChannelRecord) -> bool {
        perms::channel_is_private(ch)
    }
}
