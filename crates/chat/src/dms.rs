//! Direct messages: one stable channel per pair, group DMs of 3-10.

use hearth_store::{ChannelKind, ChannelRecord, UserRecord};
use hearth_types::{ChannelId, UserId, now_ms};

use crate::error::{ChatError, ChatResult};
use crate::events::ChatEvent;
use crate::service::Chat;

impl Chat {
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
            if self.store.user(*u).await?.is_none() {
                return Err(ChatError::Invalid("user_ids", format!("no user {u}")));
            }
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
