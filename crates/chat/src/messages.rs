//! Messages: send (idempotent by nonce), read pages, edit, delete, reactions,
//! pins, typing and read states.

use std::collections::BTreeSet;

use hearth_rbac::Permissions;
use hearth_store::{
    AttachmentRecord, ChannelRecord, EmbedRecord, Mentions, MessageCreate, MessageRecord,
    NewMessage, Page, ReactionAdded, ReadStateRecord, UserRecord,
};
use hearth_types::{AttachmentId, ChannelId, CommunityId, MessageId, RoleId, UserId, now_ms};

use hearth_moderation::{AuditAction, TargetKind};

use crate::audit::{AuditDraft, AuditRecord};
use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::mentions::parse_mentions;
use crate::service::{Chat, require};
use crate::validate;

pub const MAX_CONTENT_CHARS: usize = 4000;
const MAX_NONCE_CHARS: usize = 64;
/// The most files one message carries (issue #11).
pub const MAX_ATTACHMENTS: usize = 10;
const MAX_PINS: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionView {
    pub emoji: String,
    pub count: i64,
    /// Whether the viewer reacted with it (false in events: per-viewer).
    pub me: bool,
}

/// A message as clients see it.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageView {
    pub record: MessageRecord,
    pub community_id: Option<CommunityId>,
    pub reactions: Vec<ReactionView>,
    /// The message's files, in the order they were attached.
    pub attachments: Vec<AttachmentRecord>,
    /// Its link previews, in the order of its URLs (made after it is sent).
    pub embeds: Vec<EmbedRecord>,
}

#[derive(Clone, Debug, Default)]
pub struct NewMessageInput {
    pub content: String,
    pub nonce: Option<String>,
    pub reply_to_id: Option<MessageId>,
    pub attachment_ids: Vec<AttachmentId>,
}

#[derive(Clone, Debug)]
/// A message's own parts, before it has an id.
struct Draft {
    content: String,
    reply_to_id: Option<MessageId>,
    mentions: Mentions,
    attachment_ids: Vec<AttachmentId>,
    nonce: Option<String>,
}

/// What storing a message did.
enum Stored {
    Created(MessageView),
    /// The same author sent the same nonce here recently: the first one.
    Duplicate(MessageRecord),
}

pub enum SendOutcome {
    Created(MessageView),
    /// The same nonce was sent before: this is the first message, unchanged.
    Duplicate(MessageView),
}

/// The most distinct reactions one message carries (contract v1.1).
pub const MAX_REACTIONS_PER_MESSAGE: u32 = 20;

/// A reaction's emoji in its stored form: exactly one emoji of the Unicode
/// set (skin tones and ZWJ sequences included), spelled the way the set
/// spells it, so `❤` and `❤️` are one reaction, not two. Anything else,
/// text, several emoji or a custom emoji id (none exist yet), is refused.
fn check_emoji(e: &str) -> ChatResult<&'static str> {
    if e.len() > 64 {
        return Err(ChatError::Invalid("emoji", "a single Unicode emoji".into()));
    }
    if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChatError::Invalid("emoji", "no such custom emoji".into()));
    }
    emojis::get(e)
        .map(|found| found.as_str())
        .ok_or_else(|| ChatError::Invalid("emoji", "a single Unicode emoji".into()))
}

impl Chat {
    /// A view without reactions (what change events carry), with its files
    /// and previews.
    async fn view(&self, ch: &ChannelRecord, record: MessageRecord) -> ChatResult<MessageView> {
        let attachments = self.store.attachments(&record.attachment_ids).await?;
        let embeds = self.store.embeds(&[record.id]).await?;
        Ok(MessageView {
            record,
            community_id: ch.community_id,
            reactions: Vec::new(),
            attachments,
            embeds,
        })
    }

    /// Whether `user` may upload a file into `channel` now: VIEW_CHANNEL (else
    /// 404), SEND_MESSAGES and ATTACH_FILES (else 403), and a DM they may send in.
    pub async fn check_upload(&self, channel: ChannelId, user: UserId) -> ChatResult<()> {
        let (ch, p) = self.visible_channel(channel, user).await?;
        require(p, Permissions::SEND_MESSAGES | Permissions::ATTACH_FILES)?;
        self.dm_send_allowed(&ch, user).await
    }

    /// Announces MESSAGE_UPDATE for a message whose files or link previews
    /// changed (the image pipeline wrote a preview, the unfurler stored
    /// embeds). No permission check: the caller is the server.
    pub async fn announce_files_changed(
        &self,
        channel: ChannelId,
        id: MessageId,
    ) -> ChatResult<()> {
        let ch = self
            .store
            .channel(channel)
            .await?
            .ok_or(ChatError::NotFound)?;
        if let Some(rec) = self.store.message(channel, id).await? {
            let view = self.view(&ch, rec).await?;
            self.emit(ChatEvent::MessageUpdate(view));
        }
        Ok(())
    }

    /// Checks that `ids` are at most [`MAX_ATTACHMENTS`] distinct unsent uploads
    /// of `author` to `channel`; anything else is one answer, so ids cannot be probed.
    async fn check_attachments(
        &self,
        channel: ChannelId,
        author: UserId,
        ids: &[AttachmentId],
    ) -> ChatResult<Vec<AttachmentRecord>> {
        if ids.len() > MAX_ATTACHMENTS {
            return Err(ChatError::Invalid(
                "attachment_ids",
                format!("at most {MAX_ATTACHMENTS} files a message"),
            ));
        }
        let distinct: BTreeSet<AttachmentId> = ids.iter().copied().collect();
        if distinct.len() != ids.len() {
            return Err(ChatError::Invalid(
                "attachment_ids",
                "an attachment twice".into(),
            ));
        }
        let found = self.store.attachments(ids).await?;
        let usable = found.len() == ids.len()
            && found.iter().all(|a| {
                a.uploader_id == author
                    && a.channel_id == Some(channel)
                    && a.purpose == "message"
                    && a.message_id.is_none()
            });
        if !usable {
            return Err(ChatError::Invalid(
                "attachment_ids",
                "unknown attachment".into(),
            ));
        }
        Ok(found)
    }

    /// Attaches reaction counts (with `me` for `viewer`) to a page of messages.
    async fn with_reactions(
        &self,
        ch: &ChannelRecord,
        records: Vec<MessageRecord>,
        viewer: UserId,
    ) -> ChatResult<Vec<MessageView>> {
        let ids: Vec<MessageId> = records.iter().map(|m| m.id).collect();
        let counts = self.store.reactions(ch.id, &ids, viewer).await?;
        let file_ids: Vec<AttachmentId> = records
            .iter()
            .flat_map(|m| m.attachment_ids.iter().copied())
            .collect();
        let files = self.store.attachments(&file_ids).await?;
        let mut embeds = self.store.embeds(&ids).await?;
        Ok(records
            .into_iter()
            .map(|record| {
                let attachments = record
                    .attachment_ids
                    .iter()
                    .filter_map(|id| files.iter().find(|f| f.id == *id).cloned())
                    .collect();
                let reactions = counts
                    .iter()
                    .filter(|r| r.message_id == record.id)
                    .map(|r| ReactionView {
                        emoji: r.emoji.clone(),
                        count: r.count,
                        me: r.me,
                    })
                    .collect();
                let (mine, rest): (Vec<EmbedRecord>, Vec<EmbedRecord>) =
                    std::mem::take(&mut embeds)
                        .into_iter()
                        .partition(|e| e.message_id == record.id);
                embeds = rest;
                MessageView {
                    record,
                    community_id: ch.community_id,
                    reactions,
                    attachments,
                    embeds: mine,
                }
            })
            .collect())
    }

    /// Keeps mentions of users who are members (or DM participants) and roles of
    /// this community; `@everyone` only counts for authors with MENTION_EVERYONE.
    async fn resolve_mentions(
        &self,
        ch: &ChannelRecord,
        content: &str,
        perms: Permissions,
    ) -> ChatResult<Mentions> {
        let parsed = parse_mentions(content);
        let mut m = Mentions::default();
        for u in parsed.users {
            let present = match ch.community_id {
                Some(c) => self.store.member(c, u).await?.is_some(),
                None => self.store.is_recipient(ch.id, u).await?,
            };
            if present {
                m.users.push(u);
            }
        }
        if let Some(c) = ch.community_id {
            for r in parsed.roles {
                if r.0 != c.0
                    && self
                        .store
                        .role(r)
                        .await?
                        .is_some_and(|role| role.community_id == c)
                {
                    m.roles.push(r);
                }
            }
            m.everyone = parsed.everyone && perms.contains(Permissions::MENTION_EVERYONE);
        }
        Ok(m)
    }

    /// Counts the mention for everyone it reaches who can see the channel.
    async fn count_mentions(
        &self,
        ch: &ChannelRecord,
        author: UserId,
        m: &Mentions,
    ) -> ChatResult<()> {
        let mut who: BTreeSet<UserId> = m.users.iter().copied().collect();
        if let Some(c) = ch.community_id {
            if m.everyone {
                who.extend(self.store.member_ids(c).await?);
            }
            for r in &m.roles {
                who.extend(self.store.role_member_ids(c, RoleId(r.0)).await?);
            }
        }
        who.remove(&author);
        let mut reached = Vec::new();
        for u in who.into_iter().take(self.cfg.mention_fanout_limit) {
            if self.can_view(ch, u).await {
                reached.push(u);
            }
        }
        self.store.add_mentions(ch.id, &reached).await?;
        Ok(())
    }

    pub async fn send_message(
        &self,
        channel: ChannelId,
        author: UserId,
        input: NewMessageInput,
    ) -> ChatResult<SendOutcome> {
        let (ch, p) = self.visible_channel_hot(channel, author).await?;
        require(p, Permissions::SEND_MESSAGES)?;
        self.dm_send_allowed(&ch, author).await?;
        let content = validate::text("content", input.content.trim(), MAX_CONTENT_CHARS)?;
        if content.is_empty() && input.attachment_ids.is_empty() {
            return Err(ChatError::Invalid(
                "content",
                "1-4000 characters after trimming, or attachments".into(),
            ));
        }
        let mut files = Vec::new();
        if !input.attachment_ids.is_empty() {
            require(p, Permissions::ATTACH_FILES)?;
            files = self
                .check_attachments(channel, author, &input.attachment_ids)
                .await?;
        }
        if let Some(n) = &input.nonce
            && (n.is_empty() || n.chars().count() > MAX_NONCE_CHARS || n.contains('\0'))
        {
            return Err(ChatError::Invalid("nonce", "1-64 characters".into()));
        }
        if let Some(r) = input.reply_to_id
            && self.store.message(channel, r).await?.is_none()
        {
            return Err(ChatError::Invalid(
                "reply_to_id",
                "no such message in this channel".into(),
            ));
        }
        if let Some(dup) = self
            .moderated_send(&ch, author, p, input.nonce.as_deref())
            .await?
        {
            let mut views = self.with_reactions(&ch, vec![dup], author).await?;
            return Ok(SendOutcome::Duplicate(views.remove(0)));
        }
        let mentions = self.resolve_mentions(&ch, &content, p).await?;
        // Read on the (parallel) read pool, so the single writer does one thing.
        let author_rec = match self.hot.user(author) {
            Some(u) => u,
            None => {
                let u = self.store.user(author).await?.ok_or(ChatError::NotFound)?;
                self.hot.put_user(u.clone());
                u
            }
        };
        if let (Some(f), Some(c)) = (&self.send_filter, ch.community_id) {
            f.check(&crate::Outgoing {
                community_id: c,
                channel_id: channel,
                author: &author_rec,
                permissions: p,
                content: &content,
                mentions: &mentions,
            })
            .await?;
        }
        let draft = Draft {
            content,
            reply_to_id: input.reply_to_id,
            mentions,
            attachment_ids: input.attachment_ids,
            nonce: input.nonce,
        };
        match self.store_in_line(&ch, &author_rec, draft, files).await? {
            Stored::Created(view) => {
                if !(view.record.mentions.users.is_empty()
                    && view.record.mentions.roles.is_empty()
                    && !view.record.mentions.everyone)
                {
                    self.count_mentions(&ch, author, &view.record.mentions)
                        .await?;
                }
                Ok(SendOutcome::Created(view))
            }
            Stored::Duplicate(rec) => {
                let mut views = self.with_reactions(&ch, vec![rec], author).await?;
                Ok(SendOutcome::Duplicate(views.remove(0)))
            }
        }
    }

    /// Stores a message and announces it in its channel's order: in a
    /// cluster this node holds the channel first (see gate.rs); the id is
    /// reserved in the channel's line, and MESSAGE_CREATE leaves only after
    /// every lower id of the channel. `files` are bound to it before it is
    /// announced. The caller has checked everything else.
    async fn store_in_line(
        &self,
        ch: &ChannelRecord,
        author: &UserRecord,
        draft: Draft,
        mut files: Vec<AttachmentRecord>,
    ) -> ChatResult<Stored> {
        let channel = ch.id;
        let (floor, mut pass) = match self.gate.as_deref() {
            Some(g) => {
                let floor = g.enter(channel).await?;
                let pass = crate::gate::Pass {
                    gate: g,
                    channel,
                    emitted: None,
                };
                (floor, Some(pass))
            }
            None => (0, None),
        };
        let slot = self.sequencer.reserve(channel, self.events.clone(), || {
            MessageId(self.ids.next_above(floor).0)
        });
        let new = NewMessage {
            id: slot.id(),
            channel_id: channel,
            author_id: author.id,
            content: draft.content,
            reply_to_id: draft.reply_to_id,
            mentions: draft.mentions,
            attachment_ids: draft.attachment_ids,
            nonce: draft.nonce,
        };
        let outcome = self
            .store
            .create_message(&new, author, now_ms(), self.cfg.nonce_window_ms)
            .await;
        match outcome? {
            MessageCreate::Created(rec) => {
                // A concurrent send that claimed a file first wins; this
                // message then names a file it does not own, which serving
                // refuses (the file's message_id is the other's).
                if !files.is_empty()
                    && !self
                        .store
                        .claim_attachments(&rec.attachment_ids, author.id, channel, rec.id)
                        .await?
                {
                    tracing::warn!(message = %rec.id, "attachments claimed by a concurrent send");
                }
                for f in &mut files {
                    f.message_id = Some(rec.id);
                }
                let view = MessageView {
                    record: rec,
                    community_id: ch.community_id,
                    reactions: Vec::new(),
                    attachments: files,
                    embeds: Vec::new(),
                };
                if let Some(p) = pass.as_mut() {
                    p.emitted = Some(view.record.id);
                }
                slot.finish(Some(ChatEvent::MessageCreate(view.clone())));
                drop(pass);
                Ok(Stored::Created(view))
            }
            MessageCreate::Duplicate(rec) => Ok(Stored::Duplicate(rec)),
        }
    }

    /// Posts a notice from a system account (`author`, which no member can
    /// sign in as) into a community channel, with no permission checks and
    /// no pings: automod's flags in the moderators' channel. Not found if
    /// the channel is gone or not in `community`.
    pub async fn post_notice(
        &self,
        community: CommunityId,
        channel: ChannelId,
        author: &UserRecord,
        content: &str,
    ) -> ChatResult<MessageView> {
        let ch = self
            .store
            .channel(channel)
            .await?
            .filter(|ch| ch.community_id == Some(community))
            .ok_or(ChatError::NotFound)?;
        let content: String = content.chars().take(MAX_CONTENT_CHARS).collect();
        let draft = Draft {
            content,
            reply_to_id: None,
            mentions: Mentions::default(),
            attachment_ids: Vec::new(),
            nonce: None,
        };
        match self.store_in_line(&ch, author, draft, Vec::new()).await? {
            Stored::Created(view) => Ok(view),
            Stored::Duplicate(_) => Err(ChatError::Conflict("a notice without a nonce repeated")),
        }
    }

    /// A locked channel takes messages only from MANAGE_MESSAGES; slowmode
    /// makes a member wait between messages (MANAGE_MESSAGES and
    /// MANAGE_CHANNELS are exempt). A retry of a send that was stored
    /// (same nonce) is not a new message: it returns the first one, as
    /// outside slowmode.
    async fn moderated_send(
        &self,
        ch: &ChannelRecord,
        author: UserId,
        p: Permissions,
        nonce: Option<&str>,
    ) -> ChatResult<Option<MessageRecord>> {
        let s = ch.settings;
        if s.locked {
            require(p, Permissions::MANAGE_MESSAGES)?;
        }
        if s.slowmode_secs <= 0
            || p.intersects(Permissions::MANAGE_MESSAGES | Permissions::MANAGE_CHANNELS)
        {
            return Ok(None);
        }
        let period = std::time::Duration::from_secs(s.slowmode_secs.unsigned_abs().into());
        let key = format!("slowmode:{}:{}", ch.id, author);
        let left = self.cooldowns.start(&key, period).await.map_err(|e| {
            tracing::warn!(error = %e, "slowmode's clock did not answer");
            ChatError::Unavailable("slowmode")
        })?;
        let Some(left) = left else { return Ok(None) };
        if let Some(n) = nonce
            && let Some(first) = self.store.message_by_nonce(ch.id, author, n).await?
            && first.id.created_ms() > now_ms() - self.cfg.nonce_window_ms
        {
            return Ok(Some(first));
        }
        Err(ChatError::Limited {
            what: "slowmode: wait before sending again in this channel",
            retry_after_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1),
        })
    }

    pub async fn messages(
        &self,
        channel: ChannelId,
        viewer: UserId,
        page: Page<MessageId>,
    ) -> ChatResult<Vec<MessageView>> {
        let (ch, p) = self.visible_channel(channel, viewer).await?;
        require(p, Permissions::READ_MESSAGE_HISTORY)?;
        let records = self.store.messages(channel, page).await?;
        self.with_reactions(&ch, records, viewer).await
    }

    /// Up to `limit` messages centred on `around`, newest first like a
    /// `before` page: the older half ends with `around` itself (when it
    /// still exists) and the newer half follows it. This is what a client
    /// opens when it jumps to a message (a search result, a reply, a link).
    pub async fn messages_around(
        &self,
        channel: ChannelId,
        viewer: UserId,
        around: MessageId,
        limit: u32,
    ) -> ChatResult<Vec<MessageView>> {
        let (ch, p) = self.visible_channel(channel, viewer).await?;
        require(p, Permissions::READ_MESSAGE_HISTORY)?;
        let newer_limit = limit / 2;
        let older = self
            .store
            .messages(
                channel,
                Page {
                    // `before` is exclusive; the target belongs to this half.
                    before: Some(MessageId(around.0.saturating_add(1))),
                    after: None,
                    limit: limit - newer_limit,
                },
            )
            .await?;
        let mut records = if newer_limit == 0 {
            Vec::new()
        } else {
            self.store
                .messages(
                    channel,
                    Page {
                        before: None,
                        after: Some(around),
                        limit: newer_limit,
                    },
                )
                .await?
        };
        // The newer half comes oldest first; the page is newest first.
        records.reverse();
        records.extend(older);
        self.with_reactions(&ch, records, viewer).await
    }

    pub async fn message(
        &self,
        channel: ChannelId,
        viewer: UserId,
        id: MessageId,
    ) -> ChatResult<MessageView> {
        let (ch, p) = self.visible_channel(channel, viewer).await?;
        require(p, Permissions::READ_MESSAGE_HISTORY)?;
        let rec = self
            .store
            .message(channel, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let mut v = self.with_reactions(&ch, vec![rec], viewer).await?;
        Ok(v.remove(0))
    }

    /// Only the author edits, and only the content.
    pub async fn edit_message(
        &self,
        channel: ChannelId,
        actor: UserId,
        id: MessageId,
        content: &str,
    ) -> ChatResult<MessageView> {
        let (ch, p) = self.visible_channel(channel, actor).await?;
        let current = self
            .store
            .message(channel, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        if current.author.id != actor {
            return Err(ChatError::Refused("only the author can edit a message"));
        }
        self.not_timed_out(&ch, actor).await?;
        let content = validate::text("content", content.trim(), MAX_CONTENT_CHARS)?;
        if content.is_empty() && current.attachment_ids.is_empty() {
            return Err(ChatError::Invalid(
                "content",
                "1-4000 characters after trimming".into(),
            ));
        }
        let mentions = self.resolve_mentions(&ch, &content, p).await?;
        let rec = self
            .store
            .edit_message(channel, id, &content, &mentions, now_ms())
            .await?
            .ok_or(ChatError::NotFound)?;
        let mut v = self.with_reactions(&ch, vec![rec], actor).await?;
        let view = v.remove(0);
        self.emit(ChatEvent::MessageUpdate(view.clone()));
        Ok(view)
    }

    /// The author, or anyone with MANAGE_MESSAGES.
    pub async fn delete_message(
        &self,
        channel: ChannelId,
        actor: UserId,
        id: MessageId,
    ) -> ChatResult<()> {
        let (ch, p) = self.visible_channel(channel, actor).await?;
        let current = self
            .store
            .message(channel, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let by_moderator = current.author.id != actor;
        if by_moderator {
            require(p, Permissions::MANAGE_MESSAGES)?;
        }
        if self.store.delete_message(channel, id).await? {
            self.emit(ChatEvent::MessageDelete {
                channel_id: channel,
                community_id: ch.community_id,
                id,
            });
            if let (true, Some(c)) = (by_moderator, ch.community_id) {
                self.audit(
                    AuditDraft::new(
                        c,
                        actor,
                        AuditAction::MessageDelete,
                        TargetKind::Message,
                        Some(id.0),
                    )
                    .before(AuditRecord::Message {
                        author_id: current.author.id,
                        channel_id: channel,
                    }),
                );
            }
        }
        Ok(())
    }

    /// Deletes 2 to 100 messages of a channel at once (MANAGE_MESSAGES);
    /// ids not in the channel are skipped. Returns the ids deleted.
    pub async fn bulk_delete_messages(
        &self,
        channel: ChannelId,
        actor: UserId,
        ids: &[MessageId],
    ) -> ChatResult<Vec<MessageId>> {
        let (ch, p) = self.visible_channel(channel, actor).await?;
        require(p, Permissions::MANAGE_MESSAGES)?;
        let mut ids: Vec<MessageId> = ids.to_vec();
        ids.sort();
        ids.dedup();
        if !(2..=100).contains(&ids.len()) {
            return Err(ChatError::Invalid(
                "message_ids",
                "2 to 100 distinct message ids".into(),
            ));
        }
        let deleted = self.store.delete_messages(channel, &ids).await?;
        if deleted.is_empty() {
            return Ok(deleted);
        }
        self.emit(ChatEvent::MessageDeleteBulk {
            channel_id: channel,
            community_id: ch.community_id,
            ids: deleted.clone(),
        });
        if let Some(c) = ch.community_id {
            self.audit(
                AuditDraft::new(
                    c,
                    actor,
                    AuditAction::MessageBulkDelete,
                    TargetKind::Channel,
                    Some(channel.0),
                )
                .before(AuditRecord::Messages {
                    channel_id: channel,
                    count: deleted.len(),
                }),
            );
        }
        Ok(deleted)
    }

    pub async fn add_reaction(
        &self,
        channel: ChannelId,
        actor: UserId,
        id: MessageId,
        emoji: &str,
    ) -> ChatResult<()> {
        let emoji = check_emoji(emoji)?;
        let (ch, p) = self.visible_channel(channel, actor).await?;
        require(
            p,
            Permissions::READ_MESSAGE_HISTORY | Permissions::ADD_REACTIONS,
        )?;
        let added = self
            .store
            .add_reaction(
                channel,
                id,
                actor,
                emoji,
                now_ms(),
                MAX_REACTIONS_PER_MESSAGE,
            )
            .await?;
        if added == ReactionAdded::Full {
            return Err(ChatError::Invalid(
                "emoji",
                format!(
                    "a message carries at most {MAX_REACTIONS_PER_MESSAGE} different reactions"
                ),
            ));
        }
        if added == ReactionAdded::Added {
            self.emit(ChatEvent::ReactionAdd {
                channel_id: channel,
                community_id: ch.community_id,
                message_id: id,
                user_id: actor,
                emoji: emoji.into(),
            });
        }
        Ok(())
    }

    pub async fn remove_reaction(
        &self,
        channel: ChannelId,
        actor: UserId,
        id: MessageId,
        emoji: &str,
    ) -> ChatResult<()> {
        let emoji = check_emoji(emoji)?;
        let (ch, _) = self.visible_channel(channel, actor).await?;
        self.not_timed_out(&ch, actor).await?;
        self.store
            .message(channel, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        if self.store.remove_reaction(id, actor, emoji).await? {
            self.emit(ChatEvent::ReactionRemove {
                channel_id: channel,
                community_id: ch.community_id,
                message_id: id,
                user_id: actor,
                emoji: emoji.into(),
            });
        }
        Ok(())
    }

    /// MANAGE_MESSAGES in a community channel; any participant in a DM.
    pub async fn set_pinned(
        &self,
        channel: ChannelId,
        actor: UserId,
        id: MessageId,
        pinned: bool,
    ) -> ChatResult<()> {
        let (ch, p) = self.visible_channel(channel, actor).await?;
        if !Self::is_private(&ch) {
            require(p, Permissions::MANAGE_MESSAGES)?;
        }
        let current = self
            .store
            .message(channel, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        if current.pinned == pinned {
            return Ok(());
        }
        if pinned && self.store.pinned_messages(channel).await?.len() >= MAX_PINS {
            return Err(ChatError::Conflict("a channel holds at most 50 pins"));
        }
        self.store.set_pinned(channel, id, pinned).await?;
        self.emit(ChatEvent::PinsUpdate {
            channel_id: channel,
            community_id: ch.community_id,
            message_id: id,
            pinned,
        });
        if let Some(rec) = self.store.message(channel, id).await? {
            self.emit(ChatEvent::MessageUpdate(self.view(&ch, rec).await?));
        }
        Ok(())
    }

    pub async fn pins(&self, channel: ChannelId, viewer: UserId) -> ChatResult<Vec<MessageView>> {
        let (ch, p) = self.visible_channel(channel, viewer).await?;
        require(p, Permissions::READ_MESSAGE_HISTORY)?;
        let recs = self.store.pinned_messages(channel).await?;
        self.with_reactions(&ch, recs, viewer).await
    }

    pub async fn typing(&self, channel: ChannelId, actor: UserId) -> ChatResult<()> {
        let (ch, p) = self.visible_channel(channel, actor).await?;
        require(p, Permissions::SEND_MESSAGES)?;
        self.emit(ChatEvent::TypingStart {
            channel_id: channel,
            community_id: ch.community_id,
            user_id: actor,
            at_ms: now_ms(),
        });
        Ok(())
    }

    pub async fn ack(
        &self,
        channel: ChannelId,
        actor: UserId,
        message: MessageId,
    ) -> ChatResult<ReadStateRecord> {
        self.visible_channel(channel, actor).await?;
        // Contract v1.1: a message id that is not in this channel is 404.
        self.store
            .message(channel, message)
            .await?
            .ok_or(ChatError::NotFound)?;
        let state = self.store.ack(actor, channel, message).await?;
        self.emit(ChatEvent::ReadStateUpdate {
            user_id: actor,
            state: state.clone(),
        });
        Ok(state)
    }

    /// Read states of channels the user can still see.
    pub async fn read_states(&self, actor: UserId) -> ChatResult<Vec<ReadStateRecord>> {
        let mut out = Vec::new();
        for rs in self.store.read_states(actor).await? {
            if let Some(ch) = self.store.channel(rs.channel_id).await?
                && self.can_view(&ch, actor).await
            {
                out.push(rs);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::check_emoji;

    #[test]
    fn emoji_rule() {
        for ok in ["👍", "🎉", "👩‍👩‍👧‍👦", "1️⃣", "❤️", "👍🏽", "🏳️‍🌈", "🧑🏿‍💻"]
        {
            assert!(check_emoji(ok).is_ok(), "{ok}");
        }
        // Skin tones stay; an unqualified heart is the same reaction as the qualified one.
        assert_eq!(check_emoji("👍🏽").unwrap(), "👍🏽");
        assert_eq!(check_emoji("❤").unwrap(), check_emoji("❤️").unwrap());
        for bad in [
            "",
            "a",
            "👍 ",
            "x👍",
            "1",
            "<script>",
            "\u{0}",
            "👍👍",
            "ä",
            "é",
            "ñ",
            "中",
            "→",
            "12345",
            "\u{200D}",
            "🏽",
            "👍\u{200D}",
            "ＡＢ",
        ] {
            assert!(check_emoji(bad).is_err(), "{bad:?}");
        }
    }
}
