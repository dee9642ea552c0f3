//! Direct messages: one stable channel per pair, group DMs of 3-10.
//!
//! Who may be messaged (contract v1.1, "DMs"): a user who shares a
//! community with the caller, or already shares a DM with them, who has not
//! blocked the caller and whose `allow_dms_from` is not `nobody`. A refused
//! DM answers one and the same error whether the user exists or not, so
//! user ids cannot be probed through it.

use hearth_store::{ChannelKind, ChannelRecord, DmPolicy, UserRecord};
use hearth_types::{ChannelId, UserId, now_ms};

use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::Chat;

/// The one answer for every refused DM (unknown, blocked, unreachable).
const DM_REFUSED: ChatError = ChatError::Refused("you cannot open a DM with that user");

/// Group DMs one user may create in [`GROUP_DM_WINDOW_MS`].
pub const GROUP_DMS_PER_DAY: i64 = 100;
const GROUP_DM_WINDOW_MS: i64 = 24 * 3600 * 1000;

impl Chat {
    /// Whether `actor` may open a DM (or a group DM) that includes `other`.
    async fn may_message(&self, actor: UserId, other: UserId) -> ChatResult<bool> {
        let Some(user) = self.store.user(other).await? else {
            return Ok(false);
        };
        if user.allow_dms_from == DmPolicy::Nobody || self.store.has_blocked(other, actor).await? {
            return Ok(false);
        }
        Ok(self.store.share_community(actor, other).await?
            || self.store.share_private_channel(actor, other).await?)
    }

    /// At most [`GROUP_DMS_PER_DAY`] new group DMs per user per day.
    async fn group_dm_quota(&self, actor: UserId) -> ChatResult<()> {
        let now = now_ms();
        let (count, oldest) = self
            .store
            .group_dms_created_since(actor, now - GROUP_DM_WINDOW_MS)
            .await?;
        if count >= GROUP_DMS_PER_DAY {
            let frees_at = oldest.unwrap_or(now) + GROUP_DM_WINDOW_MS;
            return Err(ChatError::Limited {
                what: "you have created the most group DMs allowed in a day",
                retry_after_ms: (frees_at - now).max(1000) as u64,
            });
        }
        Ok(())
    }

    /// Whether a message from `actor` into a 1:1 DM may go through: not if
    /// the other participant has blocked them.
    pub(crate) async fn dm_send_allowed(
        &self,
        ch: &ChannelRecord,
        actor: UserId,
    ) -> ChatResult<()> {
        if ch.kind != ChannelKind::Dm {
            return Ok(());
        }
        // The other participant is named by the DM's key ("<low>:<high>"),
        // so the send path needs no recipients query, only the block check.
        let other = ch
            .dm_key
            .as_deref()
            .and_then(|k| k.split_once(':'))
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
            .map(|(a, b)| UserId(if a == actor.0 { b } else { a }));
        let others = match other {
            Some(o) => vec![o],
            // A DM without a well-formed key: ask the store who is in it.
            None => self
                .store
                .recipients(ch.id)
                .await?
                .into_iter()
                .map(|u| u.id)
                .filter(|id| *id != actor)
                .collect(),
        };
        for o in others {
            if self.store.has_blocked(o, actor).await? {
                return Err(ChatError::Refused(
                    "this user does not accept your messages",
                ));
            }
        }
        Ok(())
    }

    /// Blocks `target`: they can no longer open DMs with the actor or send
    /// into an existing 1:1 DM with them.
    pub async fn block(&self, actor: UserId, target: UserId) -> ChatResult<()> {
        if actor == target {
            return Err(ChatError::Invalid(
                "user_id",
                "you cannot block yourself".into(),
            ));
        }
        self.store.user(target).await?.ok_or(ChatError::NotFound)?;
        self.store.block_user(actor, target, now_ms()).await?;
        Ok(())
    }

    pub async fn unblock(&self, actor: UserId, target: UserId) -> ChatResult<()> {
        if !self.store.unblock_user(actor, target).await? {
            return Err(ChatError::NotFound);
        }
        Ok(())
    }

    /// The users `actor` has blocked.
    pub async fn blocked(&self, actor: UserId) -> ChatResult<Vec<UserRecord>> {
        let mut out = Vec::new();
        for id in self.store.blocked_users(actor).await? {
            if let Some(u) = self.store.user(id).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// One other user: the DM with them (the same channel every time);
    /// 2-9 others: a new group DM.
    pub async fn open_dm(
        &self,
        actor: UserId,
        others: &[UserId],
    ) -> ChatResult<(ChannelRecord, Vec<UserRecord>)> {
        let mut others: Vec<UserId> = others.iter().copied().filter(|u| *u != actor).collect();
        others.sort();
        others.dedup();
        if others.is_empty() || others.len() > 9 {
            return Err(ChatError::Invalid("user_ids", "1 to 9 other users".into()));
        }
        for u in &others {
            if !self.may_message(actor, *u).await? {
                tracing::info!(actor = %actor, target = %u, "DM refused");
                return Err(DM_REFUSED);
            }
        }
        if others.len() > 1 {
            self.group_dm_quota(actor).await?;
        }
        let mut recipients = others.clone();
        recipients.push(actor);
        let (kind, dm_key) = if others.len() == 1 {
            let (a, b) = (actor.0.min(others[0].0), actor.0.max(others[0].0));
            (ChannelKind::Dm, Some(format!("{a}:{b}")))
        } else {
            (ChannelKind::GroupDm, None)
        };
        let proposed = ChannelRecord {
            id: ChannelId(self.next_id()),
            community_id: None,
            kind,
            name: None,
            topic: None,
            position: 0,
            parent_id: None,
            owner_id: Some(actor),
            dm_key,
            last_message_id: None,
            created_at: now_ms(),
            settings: Default::default(),
        };
        let ch = self
            .store
            .create_private_channel(&proposed, &recipients)
            .await?;
        let users = self.store.recipients(ch.id).await?;
        if ch.id == proposed.id {
            self.emit(ChatEvent::PrivateChannelCreate {
                channel: ch.clone(),
                recipients: users.clone(),
            });
        }
        Ok((ch, users))
    }

    pub async fn dms(&self, actor: UserId) -> ChatResult<Vec<(ChannelRecord, Vec<UserRecord>)>> {
        let mut out = Vec::new();
        for ch in self.store.private_channels(actor).await? {
            let users = self.store.recipients(ch.id).await?;
            out.push((ch, users));
        }
        Ok(out)
    }
}
